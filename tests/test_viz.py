"""The UI-free pictures in aecore.viz."""
import numpy as np

from aecore.viz import CLASS_COLORS, mosaic, scatter_raster


def _rgb(hex_color):
    return [int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]


def test_scatter_raster_puts_each_point_at_its_pixel_in_its_class_colour():
    xy = np.array([[0.0, 0.0], [2.0, 1.0], [1.0, 0.5]])
    img = scatter_raster(xy, np.array([0, 1, 12]), width=21, height=11, radius=0, pad=0)
    assert img.shape == (11, 21, 3) and img.dtype == np.uint8
    assert img[10, 0].tolist() == _rgb(CLASS_COLORS[0])  # lowest x and y: bottom left, y points up
    assert img[0, 20].tolist() == _rgb(CLASS_COLORS[1])  # highest: top right
    assert img[5, 10].tolist() == _rgb(CLASS_COLORS[2])  # the middle; class 12 cycles to colour 2
    painted = (img != 255).any(-1)
    assert painted.sum() == 3  # everything else stays white


def test_scatter_raster_discs_later_classes_on_top_and_degenerate_input():
    img = scatter_raster(np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([3, 1]), width=9, height=9, radius=2, pad=2)
    painted = (img != 255).any(-1)
    assert painted.sum() == 13  # a radius-2 disc: 1 + 4 + 4 + 4 pixels, both points on one spot (zero span)
    assert img[4, 4].tolist() == _rgb(CLASS_COLORS[3])  # drawn after class 1, as the chart's traces stack
    assert (scatter_raster(np.zeros((0, 2)), np.zeros(0, int), width=5, height=4) == 255).all()


def test_mosaic_tiles_images_with_padding():
    images = np.stack([np.full(4, 0.0), np.full(4, 1.0), np.full(4, 0.5)])
    out = mosaic(images, (2, 2), ncols=2, pad=1, scale=1, pad_value=1.0)
    assert out.shape == (2 * 3 + 1, 2 * 3 + 1)
    assert (out[1:3, 1:3] == 0).all() and (out[1:3, 4:6] == 255).all() and (out[4:6, 1:3] == 128).all()


def test_the_manifold_ring_circles_the_tile_decoded_nearest_the_levers():
    from aecore.viz import mark_grid_point
    n, shape, box = 3, (4, 4), (0.0, 2.0, 0.0, 2.0)  # tiles at codes 0, 1, 2 on each axis; rows from y = 2 down
    picture = mosaic(np.zeros((n * n, 16)), shape, ncols=n, pad=1, scale=2)
    red = (255, 50, 30)

    def ring_centre(point):
        rgb = mark_grid_point(picture, box, n, shape, point)
        ys, xs = np.nonzero(np.all(rgb == red, axis=2))
        assert len(ys) and np.array_equal(rgb[~np.all(rgb == red, axis=2)][:, 0], picture[~np.all(rgb == red,
                                                                                               axis=2)])
        return (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2

    # tile (row r, column c) spans pixels 2 * (1 + 5 r) to 2 * (5 + 5 r): its centre is 2 * (3 + 5 r)
    assert ring_centre((1.0, 1.0)) == (16.0, 16.0)  # the middle tile
    assert ring_centre((2.0, 2.0))[1] > 20 and ring_centre((2.0, 2.0))[0] < 12  # top right: z2 high is up
    assert ring_centre((0.0, 0.0)) == (26.0, 6.0)  # bottom left
    assert ring_centre((-5.0, 9.0)) == ring_centre((0.0, 2.0))  # outside the box: clipped to its edge
