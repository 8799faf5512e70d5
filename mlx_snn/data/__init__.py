"""Datasets: verified MNIST / Fashion-MNIST loader and a small bundled MNIST subset."""

from .bundled import bundled_mnist
from .dvs import DVSGestureFrames, default_dvs_dir, dvs_gesture, event_counts, event_frames
from .dvs_synthetic import synthetic_dvs_gesture
from .idx import read_idx
from .loader import FrameLoader
from .mnist import default_data_dir, mnist

__all__ = ["bundled_mnist", "default_data_dir", "mnist", "read_idx"]
__all__ += ["DVSGestureFrames", "FrameLoader", "default_dvs_dir", "dvs_gesture"]
__all__ += ["event_counts", "event_frames", "synthetic_dvs_gesture"]
