"""The Collapse-or-Preserve (TAC) paper's networks, in baseline / TAC / TAC-TP modes."""

from ._common import MODES
from .dvs import DVSGestureNet, dvs_gesture_net
from .mnist import MNISTConvNet, mnist_convnet
from .ttfs import ARCHS, TTFSMLP, TTFSConvNet, TTFSNet, TTFSOutput, ttfs_convnet

__all__ = ["MODES", "DVSGestureNet", "MNISTConvNet", "dvs_gesture_net", "mnist_convnet"]
# PTTFS time-to-first-spike networks
__all__ += ["ARCHS", "TTFSMLP", "TTFSConvNet", "TTFSNet", "TTFSOutput", "ttfs_convnet"]
