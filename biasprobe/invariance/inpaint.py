"""The ``inpaint`` background fill of docs/protocols.md section 2, batched on tensors.

Normalised convolution with a 13-tap binomial kernel (``[0.5, 0.5]`` convolved with itself 11
times), applied separably (rows then columns, zero padding, same size). Per channel, repeat:
``num = blur(img * M)``, ``den = blur(M)``; every pixel outside ``M`` with ``den > 0`` takes
``num / den`` and joins ``M`` (frozen from then on), until ``M`` covers the canvas or after
80 passes (what is left stays black). The pasted image is never changed; no requantisation.

Two implementations of the same definition:

- ``inpaint_fill_dense(images, mask)``: any mask, full-canvas blurs every pass (the
  definition as written; used as a reference and for masks that are not rectangles).
- ``inpaint_fill(images, rects)``: the fast path for the protocols, whose mask is one pasted
  rectangle. ``den > 0`` exactly within 6 pixels (Chebyshev) of ``M``, so ``M`` stays a
  rectangle grown by 6 a side each pass (clipped to the canvas), ``den`` is the outer
  product of two 1-D blurs, and ``num`` is only needed on the new ring, which depends only
  on the 6-pixel band inside the old rectangle. Each pass touches four thin strips instead
  of the whole canvas.

Both run on the images' device (CPU or GPU). The fast path reads the rectangles back once
(the pass count and which strips still grow follow from them), so its passes never wait
for the device.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["MAX_PASSES", "azulay_inpaint", "binomial_kernel", "blur", "inpaint_fill", "inpaint_fill_dense", "mask_to_rects"]

MAX_PASSES = 80
TAPS = 13
R = TAPS // 2  # 6 taps each side


def binomial_kernel(taps: int = TAPS) -> np.ndarray:
    """``[0.5, 0.5]`` convolved with itself ``taps - 2`` times: float64, sums to 1."""
    kernel = np.array([0.5, 0.5])
    for _ in range(taps - 2):
        kernel = np.convolve(kernel, [0.5, 0.5])
    return kernel


@functools.lru_cache(maxsize=8)
def _kernel_on(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(binomial_kernel(), dtype=dtype, device=device)


def _kernel(like: torch.Tensor) -> torch.Tensor:
    """The binomial kernel in ``like``'s dtype on its device (made once per dtype and device)."""
    return _kernel_on(like.dtype, like.device)


def _blur_last(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """1-D blur along the last axis, zero padding, same size."""
    shape = x.shape
    rows = x.reshape(1, -1, 1, shape[-1])
    # A depthwise conv2d (one group per row) is 20x faster on the CPU than conv1d with one channel.
    weight = k.view(1, 1, 1, TAPS).expand(rows.shape[1], 1, 1, TAPS)
    return F.conv2d(rows, weight, padding=(0, R), groups=rows.shape[1]).reshape(shape)


def blur(x: torch.Tensor) -> torch.Tensor:
    """Separable binomial blur of a (N, C, H, W) float tensor, rows then columns, zero padding."""
    k = _kernel(x)
    rows = _blur_last(x, k)
    return _blur_last(rows.transpose(-1, -2), k).transpose(-1, -2)


def inpaint_fill_dense(images: torch.Tensor, mask: torch.Tensor, *, max_passes: int = MAX_PASSES) -> torch.Tensor:
    """The fill for any mask: ``images`` (N, C, H, W) float in [0, 1], ``mask`` (N, H, W) bool."""
    if images.dim() != 4 or mask.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"expected images (N, C, H, W) and mask (N, H, W), got {tuple(images.shape)} and {tuple(mask.shape)}")
    known = mask[:, None].to(images.dtype)
    img = images * known
    channels = img.shape[1]
    for _ in range(max_passes):
        if bool(known.all()):
            break
        blurred = blur(torch.cat([img, known], dim=1))
        num, den = blurred[:, :channels], blurred[:, channels:]
        new = (den > 0) & (known == 0)
        img = torch.where(new, num / torch.where(new, den, torch.ones_like(den)), img)
        known = torch.where(new, torch.ones_like(known), known)
    return img


def mask_to_rects(mask: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool rectangles -> (N, 4) int64 ``y0, y1, x0, x1`` (half-open bounding boxes)."""
    rows, cols = mask.any(dim=2), mask.any(dim=1)
    if not bool(rows.any(dim=1).all()):
        raise ValueError("every view needs a non-empty pasted rectangle")
    h, w = mask.shape[1:]
    y0 = rows.float().argmax(dim=1)
    y1 = h - rows.flip(1).float().argmax(dim=1)
    x0 = cols.float().argmax(dim=1)
    x1 = w - cols.flip(1).float().argmax(dim=1)
    return torch.stack([y0, y1, x0, x1], dim=1).long()


def _band_matrices(k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """6x6 weights from the 6 rows inside an edge to the 6 rows outside it.

    ``before[a, i]``: output ``edge - 6 + a`` from input ``edge + i`` (top/left);
    ``after[b, i]``: output ``edge + b`` from input ``edge - 6 + i`` (bottom/right).
    """
    a = torch.arange(R, device=k.device)
    before_idx = a[None, :] - a[:, None] + 2 * R  # i - a + 12
    after_idx = a[None, :] - a[:, None]  # i - b
    before = torch.where(before_idx <= 2 * R, k[before_idx.clamp(max=2 * R)], k.new_zeros(()))
    after = torch.where(after_idx >= 0, k[after_idx.clamp(min=0)], k.new_zeros(()))
    return before, after


def _take(x: torch.Tensor, dim: int, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample gather along ``dim`` (2 = rows, 3 = cols) of (N, C, H, W) with (N, k) indices,
    and the expanded index it used."""
    n, c, h, w = x.shape
    shape = (n, c, index.shape[1], w) if dim == 2 else (n, c, h, index.shape[1])
    view = index[:, None, :, None] if dim == 2 else index[:, None, None, :]
    return x.gather(dim, view.expand(shape)), view.expand(shape)


def inpaint_fill(images: torch.Tensor, rects: torch.Tensor, *, max_passes: int = MAX_PASSES) -> torch.Tensor:
    """The fill when each view's mask is one rectangle: ``rects`` (N, 4) ``y0, y1, x0, x1``.

    ``images``: (N, C, H, W) float in [0, 1]; pixels outside the rectangle are taken as black.
    Same result as ``inpaint_fill_dense`` with that rectangle as the mask (up to float
    rounding order), at a fraction of the cost. On the CPU it runs on one thread: its ops are
    small, and with two threads on a busy machine they spent most of their time waiting for
    each other (measured 20x slower).
    """
    if images.device.type != "cpu":
        return _fill_rects(images, rects, max_passes)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fill_rects(images, rects, max_passes)
    finally:
        torch.set_num_threads(threads)


def _fill_rects(images: torch.Tensor, rects: torch.Tensor, max_passes: int) -> torch.Tensor:
    n, _, h, w = images.shape
    if rects.shape != (n, 4):
        raise ValueError(f"expected rects (N, 4) for {n} views, got {tuple(rects.shape)}")
    k = _kernel(images)
    before, after = _band_matrices(k)
    rects = rects.to(images.device)
    y0, y1, x0, x1 = (rects[:, i].clone() for i in range(4))
    # Every rectangle grows R a side per pass until it meets the canvas' edges: rows grow
    # during the first row_passes passes, columns during the first col_passes (read back once).
    top, bottom, left, right = (int(v) for v in torch.stack([y0.max(), h - y1.min(), x0.max(), w - x1.min()]).cpu())
    row_passes, col_passes = -(-max(top, bottom, 0) // R), -(-max(left, right, 0) // R)
    device = images.device
    hh, ww = torch.arange(h, device=device), torch.arange(w, device=device)
    inside = ((hh[None, :, None] >= y0[:, None, None]) & (hh[None, :, None] < y1[:, None, None])
              & (ww[None, None, :] >= x0[:, None, None]) & (ww[None, None, :] < x1[:, None, None]))  # fmt: skip
    img = F.pad(images * inside[:, None].to(images.dtype), (R, R, R, R))  # padded canvas, p = 6
    arange6 = torch.arange(R, device=device)
    hp, wp = torch.arange(h + 2 * R, device=device) - R, torch.arange(w + 2 * R, device=device) - R  # canvas coordinate of padded index
    for done in range(min(max_passes, max(row_passes, col_passes))):
        ny0, ny1 = (y0 - R).clamp(min=0), (y1 + R).clamp(max=h)
        nx0, nx1 = (x0 - R).clamp(min=0), (x1 + R).clamp(max=w)
        # den = blur(M) = blur(row indicator) x blur(column indicator), on the padded grid.
        br = _blur_last(((hp[None] >= y0[:, None]) & (hp[None] < y1[:, None])).to(images.dtype), k)
        bc = _blur_last(((wp[None] >= x0[:, None]) & (wp[None] < x1[:, None])).to(images.dtype), k)
        row_ok = (hp[None] >= ny0[:, None]) & (hp[None] < ny1[:, None])  # (N, H + 12)
        col_ok = (wp[None] >= nx0[:, None]) & (wp[None] < nx1[:, None])  # (N, W + 12)
        # Padded indices of the 6-pixel bands inside the top/bottom (left/right) edges and of
        # the strips outside them; num on a strip: blur the bands along the edge, then 6 -> 6.
        rows_grow = done < row_passes  # some view still grows up or down
        cols_grow = done < col_passes
        if rows_grow:
            rows_in = torch.cat([y0[:, None] + R + arange6, y1[:, None] + arange6], dim=1)
            rows_out = torch.cat([y0[:, None] + arange6, y1[:, None] + R + arange6], dim=1)
            bands = _blur_last(_take(img, 2, rows_in)[0], k)
            num_rows = torch.cat([before @ bands[:, :, :R], after @ bands[:, :, R:]], dim=2)
            den_rows = br.gather(1, rows_out)[:, :, None] * bc[:, None, :]
            valid_rows = row_ok.gather(1, rows_out)[:, :, None] & col_ok[:, None, :]
        if cols_grow:
            cols_in = torch.cat([x0[:, None] + R + arange6, x1[:, None] + arange6], dim=1)
            cols_out = torch.cat([x0[:, None] + arange6, x1[:, None] + R + arange6], dim=1)
            bands = _take(img, 3, cols_in)[0]
            num_cols = torch.cat([bands[..., :R] @ before.T, bands[..., R:] @ after.T], dim=3)
            num_cols = _blur_last(num_cols.transpose(2, 3), k).transpose(2, 3)
            den_cols = br[:, :, None] * bc.gather(1, cols_out)[:, None, :]
            valid_cols = row_ok[:, :, None] & col_ok.gather(1, cols_out)[:, None, :]
        # Both strips are computed from the old canvas before either is written.
        if rows_grow:
            current, index = _take(img, 2, rows_out)
            img.scatter_(2, index, torch.where(valid_rows[:, None], num_rows / den_rows[:, None], current))
        if cols_grow:
            current, index = _take(img, 3, cols_out)
            img.scatter_(3, index, torch.where(valid_cols[:, None], num_cols / den_cols[:, None], current))
        y0, y1, x0, x1 = ny0, ny1, nx0, nx1
    return img[:, :, R : R + h, R : R + w].contiguous()


# The Azulay & Weiss inpainting (AzulEye/CNN-Failures, InpaintingFunction.py), for the
# ``azulay2019-inpaint`` preset (docs/literature.md). Per pass and channel, with K the 12-tap
# binomial ([0.5, 0.5] convolved with itself 10 times, ``inpaint(im, mask, 10)``) applied as
# scipy's ``convolve2d(..., 'same')`` along rows then columns (zero padding; an even kernel
# reaches 6 pixels before a pixel and 5 after it):
#   num = blur(x * M), den = blur(M), x = M * x + (1 - M) * num / (den + (den == 0)),
# then M = (R + G + B != 0): every pixel that is black on all three channels, the image's own
# black pixels included, is filled again on the next pass. Passes repeat while more than 200
# pixels are black on all channels, at most 80 times. Computed in float64, like the original.

AZULAY_TAPS = 12
AZULAY_MAX_PASSES = 80
AZULAY_MIN_BLACK = 200


def _azulay_blur(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """scipy ``convolve2d(x, K, 'same')`` then ``convolve2d(., K.T, 'same')`` on (N, C, H, W)."""
    n, c, h, w = x.shape
    weight = k.view(1, 1, 1, AZULAY_TAPS).expand(n * c, 1, 1, AZULAY_TAPS)
    before, after = AZULAY_TAPS // 2, AZULAY_TAPS // 2 - 1  # 'same' keeps the full output from index 5
    rows = F.conv2d(F.pad(x.reshape(1, n * c, h, w), (before, after)), weight, groups=n * c)
    cols = F.conv2d(F.pad(rows.transpose(2, 3), (before, after)), weight, groups=n * c)
    return cols.transpose(2, 3).reshape(n, c, h, w)


def azulay_inpaint(images: torch.Tensor, mask: torch.Tensor, *, max_passes: int = AZULAY_MAX_PASSES,
                   min_black: int = AZULAY_MIN_BLACK) -> torch.Tensor:
    """The original's ``inpainting``: ``images`` (N, 3, H, W) float, ``mask`` (N, H, W) bool (the
    pasted rectangle). Returns the filled images in ``images``' dtype."""
    if images.dim() != 4 or mask.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"expected images (N, C, H, W) and mask (N, H, W), got {tuple(images.shape)} and {tuple(mask.shape)}")
    k = torch.as_tensor(binomial_kernel(AZULAY_TAPS), dtype=torch.float64, device=images.device)
    x = images.to(torch.float64)
    m = mask[:, None].to(torch.float64)
    active = (x.sum(dim=1) == 0).flatten(1).sum(dim=1) > min_black
    for _ in range(max_passes):
        if not bool(active.any()):
            break
        blurred = _azulay_blur(torch.cat([x * m, m], dim=1), k)
        num, den = blurred[:, :3], blurred[:, 3:]
        filled = m * x + (1 - m) * (num / (den + (den == 0).to(den.dtype)))
        on = active[:, None, None, None]
        x = torch.where(on, filled, x)
        m = torch.where(on, (x.sum(dim=1, keepdim=True) != 0).to(m.dtype), m)
        active = active & ((x.sum(dim=1) == 0).flatten(1).sum(dim=1) > min_black)
    return x.to(images.dtype)
