"""Property checks shared by the figure tests: what a figure draws, and on which colour scale."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.image import AxesImage


def images(fig: Figure) -> list[AxesImage]:
    """Every image drawn with ``imshow``, axes in figure order."""
    return [image for ax in fig.axes for image in ax.get_images()]


def assert_pictures_in_range(fig: Figure) -> int:
    """Every RGB(A) image drawn is uint8 or float in [0, 1]; returns how many there are."""
    count = 0
    for image in images(fig):
        array = np.asarray(image.get_array())
        if array.ndim == 3:
            assert array.dtype == np.uint8 or (array.min() >= 0.0 and array.max() <= 1.0), (
                f"picture of dtype {array.dtype} spans [{array.min()}, {array.max()}]"
            )
            count += 1
    return count


def scale(image: AxesImage) -> tuple[str, float, float]:
    """(colour map name, vmin, vmax) a scalar map is drawn with."""
    vmin, vmax = image.get_clim()
    return image.get_cmap().name, vmin, vmax


def array(ax, index: int = 0) -> np.ndarray:
    """The data of the ``index``-th image of ``ax``."""
    return np.asarray(ax.get_images()[index].get_array())
