"""Box math: the papers' formulas checked against plain loops and their invariants."""

import math

import torch

from data import boxes as B


def test_encode_decode_invariant():
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=gen) * 300
    src = torch.cat([xy, xy + 1 + torch.rand(50, 2, generator=gen) * 200], 1)
    xy = torch.rand(50, 2, generator=gen) * 300
    dst = torch.cat([xy, xy + 1 + torch.rand(50, 2, generator=gen) * 200], 1)
    assert torch.allclose(B.decode(B.encode(src, dst), src), dst, atol=1e-3)


def test_encode_by_hand():
    src = torch.tensor([[0.0, 0.0, 10.0, 20.0]])  # centre (5, 10), size (10, 20)
    dst = torch.tensor([[5.0, 0.0, 25.0, 10.0]])  # centre (15, 5), size (20, 10)
    expected = torch.tensor([[1.0, -0.25, math.log(2.0), math.log(0.5)]])
    assert torch.allclose(B.encode(src, dst), expected)


def reference_projection(box, scale, stride, h, w, offset=0.0):
    """Written from the centres: every cell of the map, kept when its receptive-field centre (pixel
    stride * l + offset, i.e. continuous coordinate + 0.5) lies inside the scaled window; none inside:
    the cell whose centre is nearest the window's centre."""
    x1, y1, x2, y2 = (v * scale for v in box)

    def span(lo, hi, n):
        centres = [stride * i + offset + 0.5 for i in range(n)]
        inside = [i for i, c in enumerate(centres) if lo <= c <= hi]
        if inside:
            return inside[0], inside[-1]
        mid = (lo + hi) / 2
        i = min(range(n), key=lambda i: abs(centres[i] - mid))
        return i, i

    left, right = span(x1, x2, w)
    top, bottom = span(y1, y2, h)
    return [left, top, right, bottom]


def test_projection_matches_reference():
    gen = torch.Generator().manual_seed(2)
    xy = torch.rand(300, 2, generator=gen) * 480
    boxes = torch.cat([xy, xy + torch.rand(300, 2, generator=gen) * 200], 1)
    boxes[0] = torch.tensor([0.0, 0.0, 500.0, 375.0])
    boxes[1] = torch.tensor([100.0, 100.0, 104.0, 101.0])  # thinner than a cell
    boxes[2] = torch.tensor([-30.0, 400.0, 10.0, 700.0])  # partly outside the map
    for offset in (0.0, 7.5, 20.0):
        cells = B.project_to_cells(boxes, 1.5, 16, (36, 47), offset)
        for box, got in zip(boxes.tolist(), cells.tolist()):
            assert got == reference_projection(box, 1.5, 16, 36, 47, offset), (box, offset)
        assert (cells[:, 2] >= cells[:, 0]).all() and (cells[:, 3] >= cells[:, 1]).all()


def test_projection_by_hand():
    # Window 100..300 px at stride 16: centres 16 l + 0.5 inside it are those of cells 7..18
    # (112.5 .. 288.5); cell 6's centre 96.5 and cell 19's 304.5 lie outside.
    cells = B.project_to_cells(torch.tensor([[100.0, 100.0, 300.0, 300.0]]), 1.0, 16, (40, 40))
    assert cells.tolist() == [[7, 7, 18, 18]]
    # ZF-5's centres sit 20 px further right: 16 l + 20.5 inside 100..300 are cells 5..17.
    cells = B.project_to_cells(torch.tensor([[100.0, 100.0, 300.0, 300.0]]), 1.0, 16, (40, 40), 20.0)
    assert cells.tolist() == [[5, 5, 17, 17]]
    # A 4 px window holds no centre: the cell nearest its centre (102 -> cell 6, centre 96.5).
    cells = B.project_to_cells(torch.tensor([[100.0, 100.0, 104.0, 104.0]]), 1.0, 16, (40, 40))
    assert cells.tolist() == [[6, 6, 6, 6]]


def test_choose_scales_prefers_224_squared():
    boxes = torch.tensor([[0.0, 0.0, 112.0, 112.0], [0.0, 0.0, 448.0, 448.0], [0.0, 0.0, 224.0, 224.0]])
    assert B.choose_scales(boxes, [0.5, 1.0, 2.0]).tolist() == [2, 0, 1]


def test_add_context_leaves_p_pixels_after_warp():
    box = torch.tensor([[100.0, 50.0, 200.0, 250.0]])
    grown = B.add_context(box, 224, 16)[0]
    # After warping ``grown`` to 224 px, the original box must span 16..208.
    sx = 224 / (grown[2] - grown[0])
    assert torch.isclose((box[0, 0] - grown[0]) * sx, torch.tensor(16.0))
    assert torch.isclose((box[0, 2] - grown[0]) * sx, torch.tensor(208.0))


def test_unique_boxes_keeps_first_in_order():
    b = torch.tensor([[3.0, 3, 4, 4], [1, 1, 2, 2], [3, 3, 4, 4], [0, 0, 1, 1], [1, 1, 2, 2]])
    assert B.unique_boxes(b).tolist() == [0, 1, 3]


def test_max_overlaps_per_class():
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 40], [50, 50, 60, 60]])
    ov = B.max_overlaps(boxes, gt, torch.tensor([1, 1]), 3)
    assert ov.shape == (3, 3)
    assert ov[:, 0].tolist() == [0, 0, 0] and ov[:, 2].tolist() == [0, 0, 0]
    assert torch.allclose(ov[:, 1], torch.tensor([1.0, 0.5, 0.0]))


def test_paired_iou_is_the_diagonal_of_box_iou():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 100
    a = torch.cat([xy, xy + 1 + torch.rand(50, 2, generator=g) * 50], 1)
    b = a + torch.randn(50, 4, generator=g) * 5
    b[:, 2:] = torch.maximum(b[:, 2:], b[:, :2] + 1)
    b[0] = torch.tensor([500.0, 500.0, 510.0, 510.0])  # disjoint: 0
    torch.testing.assert_close(B.paired_iou(a, b), torch.diagonal(B.box_iou(a, b)))
    assert B.paired_iou(a[:1], b[:1]).item() == 0.0
    assert torch.allclose(B.paired_iou(a, a), torch.ones(50))


def test_shorter_side():
    assert B.shorter_side(B.as_tensor([[0, 0, 10, 30], [5, 5, 45, 25]])).tolist() == [10.0, 20.0]
    assert B.shorter_side(B.as_tensor([])).shape == (0,)


def test_hflip_boxes_mirrors_in_continuous_pixels_and_is_its_own_inverse():
    boxes = torch.tensor([[0.0, 1.0, 10.0, 5.0], [2.5, 0.0, 3.0, 4.0]])
    flipped = B.hflip_boxes(boxes, 10)
    assert flipped.tolist() == [[0.0, 1.0, 10.0, 5.0], [7.0, 0.0, 7.5, 4.0]]  # the whole width stays whole
    assert torch.equal(B.hflip_boxes(flipped, 10), boxes)
    assert B.hflip_boxes(torch.zeros(0, 4), 10).shape == (0, 4)
