"""Hard negatives: clean images that a naive perception mistakes for degraded ones.

A perception network trained only on clean photos versus synthesized degradations learns
shortcuts: fine periodic texture reads as noise or moire, large blurred areas as defocus, a dark
frame as under-exposure, flat bright areas as haze, sharp block edges as JPEG. These renderers make
clean images that have exactly those looks for a legitimate reason, to be labelled clean:

===============  ==================================================================================
text             printed text (several Hershey fonts, scales, colours, italics) on paper, on a sign
                 panel, or straight on the photo with an outline.
barcode          a 1-D barcode label (bars of 1 .. 4 modules, digits below) on paper or the photo.
qr               a QR-like block pattern (finder squares, timing rows, random modules, quiet zone).
fence            chain-link diamonds, a railing (bars and rails) or a square wire mesh, shaded
                 like round wire, in front of the photo (sharp) or a sky/grass/wall backdrop.
stripes          window blinds (shaded slats, thin gaps) or striped cloth/awning, 4 .. 16 px period.
fabric           woven cloth: plain weave, twill or tartan threads 2.5 .. 5 px apart, with folds.
film_grain       the photo (or a simple scene) with fine, mild luminance grain (std 0.7 .. 1.2 in
                 0-255 units, clearly below camera noise's severity 0), strongest in the mid-tones.
bokeh            a shallow depth of field: large soft discs of light over a blurred background
                 (the photo's colours), and a sharp subject (the photo, or a drawn leaf) with a
                 crisp edge covering 30 .. 60 % of the frame.
night_lights     a night scene: dark sky and buildings (or the photo dimmed as ambient light), lit
                 windows and point lights with glow; dark, but the lights are exposed correctly.
night_sky        a starry sky: a near-black background with many faint and a few full-scale stars
                 (sharp or a little spread), sometimes a faint band or nebula glow, small galaxies,
                 a dark horizon; dark by nature, not under-exposed.
overcast_sky     a bright, flat overcast sky with soft cloud shading, and structure along one edge
                 (the photo's content, or a roofline / tree line), sometimes power lines across.
tiles            tile or mosaic walls: tiles 4 .. 24 px, per-tile colour and glaze, grout lines,
                 straight or brick-bonded, slightly rotated.
===============  ==================================================================================

Every renderer draws only from a numpy generator seeded with ``(seed, kind)``, so the same
``(kind, size, seed, photo)`` gives the same bytes. Edges are anti-aliased (analytic coverage or
supersampling), and nothing adds noise, blur over the whole frame, or compression. Sizes are
relative to a 128-px crop and scale with ``size``. Only numpy and OpenCV.

Examples:
    >>> import numpy as np
    >>> from restora.synth import negatives
    >>> img = negatives.render("text", 64, seed=1)
    >>> img.shape, img.dtype, bool(0.0 <= img.min() and img.max() <= 1.0)
    ((64, 64, 3), dtype('float32'), True)
    >>> bool((negatives.render("text", 64, seed=1) == img).all())
    True
    >>> photo = np.full((64, 64, 3), 0.4, np.float32)
    >>> kind, neg = negatives.render_random(64, seed=7, photo=photo)
    >>> kind in negatives.KINDS, neg.shape
    (True, (64, 64, 3))
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import cv2
import numpy as np

__all__ = ["KINDS", "render", "render_random"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
"""Rec. 601 luma weights."""

Renderer = Callable[[np.random.Generator, int, "np.ndarray | None"], np.ndarray]
_RENDERERS: dict[str, Renderer] = {}


def _kind(name: str) -> Callable[[Renderer], Renderer]:
    def deco(fn: Renderer) -> Renderer:
        _RENDERERS[name] = fn
        return fn

    return deco


# -- public API ----------------------------------------------------------------------------------
def render(kind: str, size: int, seed: int, photo: np.ndarray | None = None) -> np.ndarray:
    """A clean hard-negative image of ``kind``: float32 (size, size, 3) RGB in [0, 1].

    ``photo``, a clean float (size, size, 3) crop in [0, 1], is used where it makes the negative
    more natural (text over it, grain on it, bokeh from its colours, ...); kinds that have no use
    for it ignore it. Deterministic for ``(kind, size, seed, photo)``.

    Examples:
        >>> render("qr", 64, seed=0).shape
        (64, 64, 3)
        >>> render("smoke", 64, seed=0)
        Traceback (most recent call last):
        ...
        ValueError: unknown negative kind 'smoke' (known: text, barcode, qr, fence, stripes, fabric, film_grain, bokeh, night_lights, night_sky, overcast_sky, tiles)
    """
    if kind not in _RENDERERS:
        raise ValueError(f"unknown negative kind {kind!r} (known: {', '.join(KINDS)})")
    s = int(size)
    if s < 8:
        raise ValueError(f"size must be at least 8 px, got {size!r}")
    ph = _check_photo(photo, s)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(kind.encode("utf-8"))])
    out = _RENDERERS[kind](rng, s, ph)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


def render_random(size: int, seed: int, photo: np.ndarray | None = None) -> tuple[str, np.ndarray]:
    """A seeded choice of kind (uniform over :data:`KINDS`) and its :func:`render`.

    Examples:
        >>> kind, img = render_random(32, seed=3)
        >>> kind == render_random(32, seed=3)[0], img.shape
        (True, (32, 32, 3))
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(b"negatives-kind")])
    kind = KINDS[int(rng.integers(len(KINDS)))]
    return kind, render(kind, size, seed, photo)


# -- helpers -------------------------------------------------------------------------------------
def _check_photo(photo: np.ndarray | None, size: int) -> np.ndarray | None:
    if photo is None:
        return None
    if not isinstance(photo, np.ndarray) or photo.shape != (size, size, 3):
        raise ValueError(f"photo must be a ({size}, {size}, 3) RGB crop, got shape {getattr(photo, 'shape', None)}")
    if not np.issubdtype(photo.dtype, np.floating):
        raise ValueError(f"photo must be float in [0, 1], got dtype {photo.dtype}")
    return np.ascontiguousarray(np.clip(photo, 0.0, 1.0), dtype=np.float32)


def _grid(s: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    return yy + 0.5, xx + 0.5  # pixel centres


def _smooth(rng: np.random.Generator, s: int, cells: int = 3) -> np.ndarray:
    """A smooth zero-mean field in about [-1, 1]: a tiny random grid, upsampled bicubically."""
    g = rng.uniform(-1.0, 1.0, (cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(g, (s, s), interpolation=cv2.INTER_CUBIC)


def _cover(d: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage from a signed distance in px (positive inside)."""
    return np.clip(d + 0.5, 0.0, 1.0)


def _down(img: np.ndarray, s: int) -> np.ndarray:
    return cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA)


def _blend(bg: np.ndarray, color: np.ndarray | tuple[float, ...], mask: np.ndarray) -> np.ndarray:
    m = mask[..., None] if mask.ndim == 2 else mask
    return bg * (1.0 - m) + np.asarray(color, np.float32) * m


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    px = np.array([[[h * 360.0, s, v]]], np.float32)
    return cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0]


def _palette(rng: np.random.Generator, photo: np.ndarray | None, k: int) -> np.ndarray:
    """``k`` colours: pixels of the (smoothed) photo, or random pleasant ones."""
    if photo is not None:
        s = photo.shape[0]
        soft = cv2.GaussianBlur(photo, (0, 0), max(1.0, s / 32))
        ys, xs = rng.integers(0, s, k), rng.integers(0, s, k)
        return soft[ys, xs].astype(np.float32)
    return np.stack([_hsv(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(0.35, 0.9)) for _ in range(k)])


def _paper(rng: np.random.Generator, s: int) -> np.ndarray:
    """Paper or card: an off-white (sometimes tinted) with a faint, smooth light falloff."""
    base = rng.uniform(0.86, 0.97)
    tint = rng.uniform(-0.03, 0.03, 3) + np.array([0.01, 0.005, -0.015])  # usually a little warm
    if rng.random() < 0.2:  # coloured card
        tint = _hsv(rng.random(), rng.uniform(0.15, 0.4), 1.0) - 1.0
    col = np.clip(base * (1.0 + tint), 0, 1).astype(np.float32)
    shade = 1.0 + 0.03 * _smooth(rng, s, 2)
    return col * shade[..., None]


def _scene(rng: np.random.Generator, s: int) -> np.ndarray:
    """A simple clean scene when no photo is given: sky gradient, ground, a few crisp shapes."""
    yy, xx = _grid(s)
    horizon = s * rng.uniform(0.35, 0.65)
    sky_top, sky_low = _hsv(rng.uniform(0.55, 0.62), rng.uniform(0.3, 0.6), rng.uniform(0.6, 0.85)), _hsv(0.58, 0.15, 0.9)
    t = np.clip(yy / max(horizon, 1.0), 0, 1)[..., None]
    img = sky_top * (1 - t) + sky_low * t
    ground = _hsv(rng.uniform(0.1, 0.35), rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.6))
    g = _cover(yy - horizon - 3.0 * np.sin(xx / s * rng.uniform(2, 6) + rng.uniform(0, 6)))
    img = _blend(img, ground, g) * (1.0 - 0.15 * g * (yy / s))[..., None]
    for _ in range(int(rng.integers(2, 5))):
        cx, cy, r = rng.uniform(0, s), rng.uniform(0.2 * s, s), rng.uniform(0.06, 0.2) * s
        col = _hsv(rng.random(), rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.9))
        if rng.random() < 0.5:
            d = r - np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        else:
            d = np.minimum(r - np.abs(xx - cx), 1.4 * r - np.abs(yy - cy))
        shade = (1.0 - 0.25 * np.clip((xx - cx) / (2 * r), -1, 1))[..., None]
        img = _blend(img, 0, _cover(d)) + _cover(d)[..., None] * col * shade
    return img.astype(np.float32)


def _lines_family(yy: np.ndarray, xx: np.ndarray, angle: float, period: float, width: float, phase: float) -> tuple[np.ndarray, np.ndarray]:
    """Coverage of parallel lines (normal at ``angle`` radians) and the signed position across each
    line in [-1, 1] (for round-wire shading)."""
    u = xx * np.cos(angle) + yy * np.sin(angle) + phase
    d = np.abs(np.mod(u, period) - period / 2.0)
    cov = _cover(width / 2.0 - d)
    across = np.clip((np.mod(u, period) - period / 2.0) / max(width / 2.0, 0.5), -1, 1)
    return cov, across


# -- the kinds -----------------------------------------------------------------------------------
FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
)
_WORDS = (
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "open", "daily", "sale", "menu", "coffee",
    "exit", "station", "north", "main", "street", "price", "total", "24", "hours", "welcome", "notice",
    "please", "keep", "clear", "parking", "only", "no", "entry", "caution", "fresh", "bread", "chapter",
    "one", "river", "market", "hotel", "museum", "2019", "page", "12", "tel", "555", "0142", "www", "info",
    "shop", "closed", "Monday",
)


def _phrase(rng: np.random.Generator, n: int) -> str:
    words = [str(_WORDS[i]) for i in rng.integers(0, len(_WORDS), n)]
    if rng.random() < 0.4:
        words = [w.upper() for w in words]
    elif rng.random() < 0.5:
        words[0] = words[0].capitalize()
    return " ".join(words)


@_kind("text")
def _text(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    origin, clip = (0.0, 0.0), None  # where the text block starts; the panel it must stay on
    u = rng.random()
    if photo is None:
        mode = "paper" if u < 0.6 else "panel"
    else:
        mode = "paper" if u < 0.2 else "panel" if u < 0.55 else "overlay"
    if mode == "paper":
        bg = _paper(rng, s)
        inks = [(0.05, 0.05, 0.07), (0.08, 0.1, 0.35), (0.55, 0.06, 0.05), (0.15, 0.15, 0.15)]
        ink_for = lambda: np.array(inks[int(rng.integers(len(inks)))], np.float32) * rng.uniform(0.7, 1.2)
        outline = None
    else:
        if mode == "panel":
            panel = _hsv(rng.random(), rng.uniform(0.4, 0.9), rng.uniform(0.25, 0.7))
            bg = np.ones((s, s, 3), np.float32) * panel * (1.0 + 0.04 * _smooth(rng, s, 2))[..., None]
            if photo is not None:  # a sign: the panel covers part of the photo
                yy, xx = _grid(s)
                px0, py0 = rng.uniform(-0.1, 0.3) * s, rng.uniform(-0.1, 0.3) * s
                px1, py1 = px0 + rng.uniform(0.6, 1.0) * s, py0 + rng.uniform(0.5, 0.9) * s
                m = _cover(np.minimum.reduce([xx - px0, px1 - xx, yy - py0, py1 - yy]))
                origin = (max(px0, 0.0) + 0.04 * s, max(py0, 0.0))
                clip = m
                bg = _blend(photo, 0, m) + bg * m[..., None]
            light = panel.mean() < 0.5 or rng.random() < 0.3
            ink_for = (lambda: np.array([0.97, 0.96, 0.9], np.float32)) if light else (lambda: np.array([0.05, 0.05, 0.05], np.float32))
            outline = None
        else:  # caption straight on the photo, white or yellow with a dark outline
            bg = photo.copy() if photo is not None else _scene(rng, s)
            col = np.array([1.0, 1.0, 1.0] if rng.random() < 0.7 else [1.0, 0.9, 0.2], np.float32)
            ink_for = lambda: col
            outline = np.array([0.0, 0.0, 0.0], np.float32)
    ss = 2  # draw at 2x, area-downsample: printed, anti-aliased glyphs
    n_lines = int(rng.integers(2, 7))
    font = int(FONTS[int(rng.integers(len(FONTS)))])
    if rng.random() < 0.2:
        font |= cv2.FONT_ITALIC
    cap = rng.uniform(0.06, 0.16) * s * ss  # glyph height in supersampled px
    (_, th), _ = cv2.getTextSize("Hg", font, 1.0, 1)
    scale = float(cap / max(th, 1))
    thick = int(rng.integers(1, 3)) * ss if cap > 14 else ss
    lead = cap * rng.uniform(1.5, 2.1)
    y = (origin[1] + rng.uniform(0.05, 0.2) * s) * ss + cap
    x0 = int((origin[0] + rng.uniform(-0.05, 0.1) * s) * ss)
    out = bg
    head = rng.uniform(1.0, 1.7) if rng.random() < 0.5 else 1.0  # a headline line, larger
    for i in range(n_lines):
        if y > s * ss + cap:
            break
        text = _phrase(rng, int(rng.integers(2, 6)))
        f = head if i == 0 else 1.0
        org = (x0 + int(rng.integers(0, max(1, int(0.1 * s * ss)))), int(y + (f - 1.0) * cap))
        if outline is not None:
            m = np.zeros((s * ss, s * ss), np.uint8)
            cv2.putText(m, text, org, font, scale * f, 255, thick + 2 * ss, cv2.LINE_AA)
            out = _blend(out, outline, _down(m.astype(np.float32) / 255.0, s) * 0.85)
        m = np.zeros((s * ss, s * ss), np.uint8)
        cv2.putText(m, text, org, font, scale * f, 255, thick, cv2.LINE_AA)
        ink = _down(m.astype(np.float32) / 255.0, s)
        out = _blend(out, ink_for(), ink if clip is None else ink * clip)
        y += lead * f
    return out


@_kind("barcode")
def _barcode(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    bg = photo.copy() if photo is not None and rng.random() < 0.6 else _paper(rng, s) * rng.uniform(0.7, 1.0)
    module = rng.uniform(1.2, 2.6) * s / 128.0
    widths = rng.integers(1, 5, 96)  # bar, space, bar, ... in modules
    edges = np.concatenate([[0.0], np.cumsum(widths) * module])
    lw, lh = rng.uniform(0.6, 1.1) * s, rng.uniform(0.45, 0.85) * s  # the white label
    lx, ly = rng.uniform(-0.1 * s, s - lw + 0.1 * s), rng.uniform(-0.05 * s, s - lh + 0.05 * s)
    yy, xx = _grid(s)
    label = _cover(np.minimum.reduce([xx - lx, lx + lw - xx, yy - ly, ly + lh - yy]))
    white = np.array([0.96, 0.96, 0.94], np.float32) * rng.uniform(0.92, 1.0)
    out = _blend(bg, white, label)
    quiet = 8 * module
    bar_top, bar_bot = ly + 0.08 * lh, ly + lh * rng.uniform(0.72, 0.8)
    ssx = 4  # bars: per-column coverage from a 4x supersampled profile
    xs = (np.arange(s * ssx) + 0.5) / ssx - (lx + quiet)
    idx = np.searchsorted(edges, xs, side="right") - 1
    inside = (xs >= 0) & (xs < min(edges[-1], lw - 2 * quiet))
    prof = (inside & (idx % 2 == 0)).astype(np.float32).reshape(s, ssx).mean(1)
    rows = _cover(np.minimum(yy - bar_top, bar_bot - yy))
    ink = np.array([0.04, 0.04, 0.05], np.float32)
    out = _blend(out, ink, rows * prof[None, :] * label)
    m = np.zeros((2 * s, 2 * s), np.uint8)  # digits under the bars
    digits = "".join(str(d) for d in rng.integers(0, 10, 13))
    scale = max(0.25, (lh * 0.12 * 2) / 22.0)
    cv2.putText(m, digits, (int(2 * (lx + quiet)), int(2 * (bar_bot + 0.13 * lh))), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, max(1, int(s / 96)), cv2.LINE_AA)
    out = _blend(out, ink, _down(m.astype(np.float32) / 255.0, s) * label)
    if rng.random() < 0.3:
        out = np.ascontiguousarray(out.transpose(1, 0, 2))
    return out


def _qr_matrix(rng: np.random.Generator, n: int) -> np.ndarray:
    q = (rng.random((n, n)) < 0.5).astype(np.float32)
    finder = np.ones((7, 7), np.float32)
    finder[1:6, 1:6] = 0
    finder[2:5, 2:5] = 1
    for r, c in ((0, 0), (0, n - 7), (n - 7, 0)):
        q[max(r - 1, 0) : r + 8, max(c - 1, 0) : c + 8] = 0  # separators
        q[r : r + 7, c : c + 7] = finder
    q[6, 8 : n - 8] = (np.arange(8, n - 8) % 2 == 0)
    q[8 : n - 8, 6] = (np.arange(8, n - 8) % 2 == 0)
    if n >= 25:  # one alignment pattern
        a = np.ones((5, 5), np.float32)
        a[1:4, 1:4] = 0
        a[2, 2] = 1
        q[n - 9 : n - 4, n - 9 : n - 4] = a
    return q


@_kind("qr")
def _qr(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    bg = photo.copy() if photo is not None and rng.random() < 0.5 else _paper(rng, s)
    n = int(rng.choice([21, 25, 29, 33]))
    q = np.pad(_qr_matrix(rng, n), 4)  # quiet zone
    span = rng.uniform(0.6, 1.5) * s
    module = span / q.shape[0]
    ss = 4
    coords = (np.arange(s * ss) + 0.5) / ss
    ox, oy = rng.uniform(min(0.0, s - span), max(0.0, s - span), 2)
    ix = np.floor((coords - ox) / module).astype(int)
    iy = np.floor((coords - oy) / module).astype(int)
    vx, vy = (ix >= 0) & (ix < q.shape[0]), (iy >= 0) & (iy < q.shape[0])
    big = q[np.clip(iy, 0, q.shape[0] - 1)][:, np.clip(ix, 0, q.shape[0] - 1)] * vy[:, None] * vx[None, :]
    area = (vy[:, None] & vx[None, :]).astype(np.float32)
    dark, light = _down(big.astype(np.float32), s), _down(area, s)
    white = np.array([0.97, 0.97, 0.96], np.float32) * rng.uniform(0.9, 1.0)
    ink = np.array([0.03, 0.03, 0.04], np.float32) if rng.random() < 0.8 else _hsv(rng.random(), 0.7, 0.35)
    return _blend(_blend(bg, white, light), ink, dark)


def _backdrop(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    if photo is not None and rng.random() < 0.7:
        return photo.copy()
    if rng.random() < 0.5:
        return _scene(rng, s)
    wall = _hsv(rng.uniform(0.05, 0.12), rng.uniform(0.1, 0.4), rng.uniform(0.5, 0.85))
    return np.ones((s, s, 3), np.float32) * wall * (1.0 + 0.05 * _smooth(rng, s, 2))[..., None]


def _wire_shade(across: np.ndarray) -> np.ndarray:
    return 0.75 + 0.45 * np.sqrt(np.clip(1.0 - across**2, 0.0, 1.0))  # a lit round wire


@_kind("fence")
def _fence(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    out = _backdrop(rng, s, photo)
    yy, xx = _grid(s)
    k = s / 128.0
    metal = [np.array(c, np.float32) for c in ((0.62, 0.64, 0.66), (0.12, 0.13, 0.13), (0.16, 0.32, 0.2), (0.75, 0.75, 0.72))]
    col = metal[int(rng.integers(len(metal)))] * rng.uniform(0.85, 1.1)
    style = rng.choice(["chainlink", "railing", "mesh"])
    tilt = np.deg2rad(rng.normal(0.0, 4.0))
    if style == "chainlink":
        period, width = rng.uniform(7, 14) * k, rng.uniform(1.0, 1.8) * k
        for a in (np.pi / 4 + tilt, -np.pi / 4 + tilt):
            cov, across = _lines_family(yy, xx, a, period, width, rng.uniform(0, period))
            out = _blend(out, 0, cov) + cov[..., None] * col * _wire_shade(across)[..., None]
    elif style == "mesh":
        period, width = rng.uniform(5, 11) * k, rng.uniform(0.9, 1.6) * k
        for a in (tilt, np.pi / 2 + tilt):
            cov, across = _lines_family(yy, xx, a, period, width, rng.uniform(0, period))
            out = _blend(out, 0, cov) + cov[..., None] * col * _wire_shade(across)[..., None]
    else:
        period, width = rng.uniform(8, 18) * k, rng.uniform(2.0, 4.5) * k
        cov, across = _lines_family(yy, xx, tilt, period, width, rng.uniform(0, period))
        out = _blend(out, 0, cov) + cov[..., None] * col * _wire_shade(across)[..., None]
        for _ in range(int(rng.integers(1, 3))):  # horizontal rails
            y0, h = rng.uniform(0.05, 0.9) * s, rng.uniform(3, 7) * k
            rail = _cover(np.minimum(yy - y0, y0 + h - yy))
            shade = (0.8 + 0.35 * np.clip((y0 + h - yy) / h, 0, 1))[..., None]
            out = _blend(out, 0, rail) + rail[..., None] * col * shade
    return out


def _ss_grid(s: int, ss: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample positions (y, x) in output px of an ``ss`` x supersampled grid."""
    c = ((np.arange(s * ss, dtype=np.float32) + 0.5) / ss)
    return c[:, None] + np.zeros((1, s * ss), np.float32), c[None, :] + np.zeros((s * ss, 1), np.float32)


@_kind("stripes")
def _stripes(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    ss = 2
    n = s * ss
    yy, xx = _ss_grid(s, ss)
    angle = np.deg2rad((0.0 if rng.random() < 0.6 else 90.0) + rng.normal(0.0, 3.0))
    period = rng.uniform(4.0, 16.0) * s / 128.0
    t = np.mod((yy * np.float32(np.cos(angle)) + xx * np.float32(np.sin(angle))) / np.float32(period) + np.float32(rng.random()), 1.0)
    light = 1.0 + 0.12 * _smooth(rng, n, 2)
    if rng.random() < 0.5:  # blinds: each slat shaded across, thin dark gap between slats
        slat = _hsv(rng.uniform(0.05, 0.15), rng.uniform(0.0, 0.25), rng.uniform(0.6, 0.95))
        gap = np.float32(rng.uniform(0.08, 0.2))
        shade = 0.78 + 0.3 * np.sqrt(np.maximum(np.sin(np.float32(np.pi) * np.minimum(t / (1 - gap), 1.0)), 0.0))
        shade = np.where(t > 1 - gap, np.float32(0.25), shade)
        val = (shade * light)[..., None] * slat
    else:  # striped cloth or awning: two or three colours
        k = int(rng.integers(2, 4))
        cols = _palette(rng, photo, k) if photo is not None and rng.random() < 0.5 else np.stack(
            [_hsv(rng.random(), rng.uniform(0.2, 0.9), rng.uniform(0.3, 0.95)) for _ in range(k)]
        )
        if rng.random() < 0.5:  # often one of them white-ish
            cols[0] = np.clip(cols[0] * 0.3 + 0.65, 0, 1)
        bounds = np.cumsum(rng.uniform(0.5, 1.5, k))
        bounds = (bounds / bounds[-1]).astype(np.float32)
        idx = np.searchsorted(bounds, t.ravel(), side="right").clip(0, k - 1).reshape(t.shape)
        val = cols.astype(np.float32)[idx] * light[..., None]
    return _down(val.astype(np.float32), s)


@_kind("fabric")
def _fabric(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    ss = 2
    n = s * ss
    yy, xx = _ss_grid(s, ss)
    a = np.deg2rad(rng.normal(0.0, 6.0))
    ca, sa = np.float32(np.cos(a)), np.float32(np.sin(a))
    p = np.float32(rng.uniform(2.5, 5.0) * s / 128.0)  # thread pitch
    u, v = (xx * ca + yy * sa) / p + 100.0, (yy * ca - xx * sa) / p + 100.0
    iu, iv = np.floor(u), np.floor(v)
    fu, fv = u - iu, v - iv
    weave = rng.choice(["plain", "twill", "tartan"])
    warp_on_top = (np.mod(iu + iv, 2.0) == 0) if weave == "plain" else (np.mod(iu + iv, 3.0) != 0)
    base = _palette(rng, photo, 2) if photo is not None and rng.random() < 0.5 else np.stack(
        [_hsv(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.85)) for _ in range(2)]
    )
    warp_c, weft_c = base[0].astype(np.float32), base[1].astype(np.float32)
    if weave == "twill" and rng.random() < 0.5:  # denim: blue warp, white weft
        warp_c, weft_c = np.array([0.12, 0.2, 0.42], np.float32), np.array([0.85, 0.85, 0.82], np.float32)
    # each thread is a round strand: brighter along its middle
    sh_warp = 0.7 + 0.35 * np.sqrt(np.maximum(np.sin(np.float32(np.pi) * fu), 0.0))
    sh_weft = 0.7 + 0.35 * np.sqrt(np.maximum(np.sin(np.float32(np.pi) * fv), 0.0))
    folds = 1.0 + 0.12 * _smooth(rng, n, 2)
    top = warp_on_top.astype(np.float32)
    wa, we = top * sh_warp * folds, (1.0 - top) * sh_weft * folds
    if weave == "tartan":  # bands of 2 .. 8 threads of a colour, the same sett both ways
        seq = np.stack([_hsv(rng.random(), rng.uniform(0.3, 0.9), rng.uniform(0.2, 0.8)) for _ in range(4)]).astype(np.float32)
        sett = np.repeat(rng.integers(0, 4, 6), rng.integers(2, 9, 6))
        n_sett = len(sett)
        val = seq[sett[iu.astype(np.int32) % n_sett]] * wa[..., None] + seq[sett[iv.astype(np.int32) % n_sett]] * we[..., None]
    else:
        val = wa[..., None] * warp_c + we[..., None] * weft_c
    return _down(val.astype(np.float32), s)


@_kind("film_grain")
def _film_grain(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    img = photo.copy() if photo is not None else _scene(rng, s)
    std = rng.uniform(0.7, 1.2) / 255.0  # in the mid-tones; below camera noise at severity 0 (~1.7 .. 3)
    size = rng.uniform(0.5, 0.8)  # grain blur, px: fine
    white = rng.standard_normal((s, s), dtype=np.float32)
    grain = cv2.GaussianBlur(white, (0, 0), size, borderType=cv2.BORDER_REFLECT_101)
    grain /= max(float(grain.std()), 1e-6)
    lum = img @ _LUMA
    midtones = 0.6 + 1.6 * lum * (1.0 - lum)  # 0.6 in the blacks and whites, 1 in the mid-tones
    return img + (grain * std * midtones)[..., None]


@_kind("bokeh")
def _bokeh(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    yy, xx = _grid(s)
    if photo is not None:
        back = cv2.GaussianBlur(photo, (0, 0), s / 10.0, borderType=cv2.BORDER_REFLECT_101) * rng.uniform(0.35, 0.7)
    else:
        c0, c1 = _hsv(rng.random(), rng.uniform(0.3, 0.8), rng.uniform(0.1, 0.35)), _hsv(rng.random(), rng.uniform(0.3, 0.8), rng.uniform(0.15, 0.45))
        t = (0.5 + 0.5 * _smooth(rng, s, 2))[..., None]
        back = c0 * (1 - t) + c1 * t
    lights = _palette(rng, photo, 24) if photo is not None else None
    warm = [np.array(c, np.float32) for c in ((1.0, 0.85, 0.55), (1.0, 0.95, 0.85), (0.6, 0.85, 1.0), (1.0, 0.6, 0.4))]
    radius_k = rng.uniform(0.05, 0.13) * s
    layer = np.zeros((s, s, 3), np.float32)
    for i in range(int(rng.integers(8, 24))):
        cx, cy = rng.uniform(-0.1, 1.1) * s, rng.uniform(-0.1, 1.1) * s
        r = radius_k * rng.uniform(0.6, 1.4)
        if lights is not None and rng.random() < 0.6:
            col = np.clip(lights[i] / max(float(lights[i].max()), 0.05), 0, 1) * rng.uniform(0.7, 1.0)
        else:
            col = warm[int(rng.integers(len(warm)))]
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        disc = np.clip((r - d) / 1.2 + 0.5, 0, 1)  # soft-ish but defined edge, like a real aperture
        rim = 0.85 + 0.25 * np.clip(d / r, 0, 1) ** 4  # slightly brighter rim ("soap bubble")
        layer += (disc * rim * rng.uniform(0.25, 0.6))[..., None] * col
    back = 1.0 - (1.0 - back) * (1.0 - np.clip(layer, 0, 1))  # screen: lights add up
    # the sharp subject: the photo itself inside a smooth shape, or a drawn leaf
    cx, cy = rng.uniform(0.25, 0.75) * s, rng.uniform(0.35, 0.9) * s
    ang = rng.uniform(0, np.pi)
    ru, rv = rng.uniform(0.35, 0.6) * s, rng.uniform(0.2, 0.4) * s
    du = (xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)
    dv = -(xx - cx) * np.sin(ang) + (yy - cy) * np.cos(ang)
    theta = np.arctan2(dv, du)
    wob = 1.0 + 0.08 * np.sin(3 * theta + rng.uniform(0, 6)) + 0.05 * np.sin(5 * theta + rng.uniform(0, 6))
    rho = np.sqrt((du / ru) ** 2 + (dv / rv) ** 2)
    mask = _cover((wob - rho) * min(ru, rv))
    if photo is not None:
        subject = photo
    else:
        green = _hsv(rng.uniform(0.2, 0.38), rng.uniform(0.5, 0.85), rng.uniform(0.4, 0.75))
        w = 0.9 * s / 128.0
        spacing = rng.uniform(0.12, 0.2) * s
        q = np.mod(np.abs(dv) - 0.7 * du, spacing)  # side veins: chevrons toward the tip
        veins = np.maximum(_cover(w / 2 - np.minimum(q, spacing - q)) * 0.7, _cover(1.5 * w / 2 - np.abs(dv)))
        lit = (1.0 + 0.25 * np.clip(-dv / rv, -1, 1))[..., None]
        subject = _blend(green * lit, np.clip(green * 1.5 + 0.1, 0, 1), veins)
    return _blend(back, 0, mask) + mask[..., None] * subject


@_kind("night_lights")
def _night_lights(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    yy, xx = _grid(s)
    k = s / 128.0
    if photo is not None and rng.random() < 0.5:  # the photo lit only by moonlight and street light
        lum = photo @ _LUMA
        tint = np.array([0.7, 0.85, 1.2], np.float32) * rng.uniform(0.04, 0.1)
        img = (lum**1.2)[..., None] * tint
        windows = False
    else:
        top = _hsv(rng.uniform(0.58, 0.68), rng.uniform(0.5, 0.9), rng.uniform(0.02, 0.08))
        low = _hsv(rng.uniform(0.55, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.05, 0.14))
        t = (yy / s)[..., None]
        img = top * (1 - t) + low * t
        windows = True
    if windows:  # buildings with lit windows
        x = rng.uniform(-0.1, 0.1) * s
        while x < s:
            w, h = rng.uniform(0.15, 0.4) * s, rng.uniform(0.25, 0.85) * s
            body = _cover(np.minimum.reduce([xx - x, x + w - xx, yy - (s - h)]))
            facade = _hsv(rng.uniform(0.55, 0.7), rng.uniform(0.1, 0.4), rng.uniform(0.015, 0.04))
            img = _blend(img, facade, body)
            wx, wy = rng.uniform(3, 6) * k, rng.uniform(4, 8) * k
            lit_p = rng.uniform(0.15, 0.5)
            col = _hsv(rng.uniform(0.08, 0.14), rng.uniform(0.3, 0.7), 1.0) * rng.uniform(0.55, 0.9)
            cx, cy = np.floor((xx - x) / wx), np.floor((yy - (s - h)) / wy)
            fx, fy = (xx - x) / wx - cx, (yy - (s - h)) / wy - cy
            key = (cx.astype(np.int64) * 7919 + cy.astype(np.int64) * 104729 + int(rng.integers(1 << 20))) % 1000
            lit = (key < lit_p * 1000) & (fx > 0.3) & (fx < 0.85) & (fy > 0.3) & (fy < 0.8)
            img = _blend(img, col, lit.astype(np.float32) * body)
            x += w + rng.uniform(0.0, 0.08) * s
    glow = np.zeros((s, s, 3), np.float32)
    colours = [np.array(c, np.float32) for c in ((1.0, 0.72, 0.35), (1.0, 0.93, 0.8), (0.85, 0.92, 1.0), (1.0, 0.3, 0.2), (0.4, 1.0, 0.5))]
    for _ in range(int(rng.integers(3, 14))):
        lx, ly = rng.uniform(0, s), rng.uniform(0.1, 0.85) * s
        col = colours[int(rng.integers(len(colours)))]
        r2 = (xx - lx) ** 2 + (yy - ly) ** 2
        core = rng.uniform(0.8, 2.5) * k
        g1, g2 = rng.uniform(2.0, 6.0) * k, rng.uniform(8.0, 20.0) * k
        amp = rng.uniform(0.5, 1.0)
        field = _cover(core - np.sqrt(r2)) * 1.6 + amp * (0.55 * np.exp(-r2 / (2 * g1 * g1)) + 0.2 * np.exp(-r2 / (2 * g2 * g2)))
        glow += field[..., None] * col
    return 1.0 - (1.0 - img) * (1.0 - np.clip(glow, 0, 1))


@_kind("night_sky")
def _night_sky(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    yy, xx = _grid(s)
    k = s / 128.0
    tint = np.array(rng.uniform(0.6, 1.0, 3), np.float32)
    img = np.zeros((s, s, 3), np.float32) + (rng.uniform(0.0, 0.03) * tint)  # the sky's own glow
    if rng.random() < 0.6:  # a faint band of unresolved stars and dust, or a nebula's glow
        ang = rng.uniform(0, np.pi)
        across = (xx - s / 2) * np.sin(ang) - (yy - s / 2) * np.cos(ang) + rng.uniform(-0.3, 0.3) * s
        band = np.exp(-(across / (rng.uniform(0.1, 0.35) * s)) ** 2) * (0.6 + 0.4 * _smooth(rng, s, 5))
        img += np.clip(band, 0, None)[..., None] * (rng.uniform(0.02, 0.12) * np.array(rng.uniform(0.5, 1.0, 3), np.float32))
    # stars: many faint and a few bright points (exponential brightness), the sharp ones a pixel
    # wide, others spread by the optics or the seeing; bright ones are exposed to full scale
    colours = [np.array(c, np.float32) for c in ((1.0, 1.0, 1.0), (0.8, 0.88, 1.0), (1.0, 0.92, 0.75), (1.0, 0.75, 0.6))]
    n = int(rng.integers(60, 450) * k * k)
    for sigma in (rng.uniform(0.35, 0.6) * k, rng.uniform(0.7, 1.3) * k):
        impulses = np.zeros((s, s, 3), np.float32)
        for _ in range(n // 2):
            y, x = int(rng.integers(s)), int(rng.integers(s))
            impulses[y, x] += colours[int(rng.integers(len(colours)))] * min(1.6, rng.exponential(0.22) + 0.04)
        img += cv2.GaussianBlur(impulses, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101) * (2 * np.pi * sigma * sigma)
    for _ in range(int(rng.integers(0, 6))):  # small galaxies: soft coloured ellipses
        cx, cy, a = rng.uniform(0, s), rng.uniform(0, s), rng.uniform(0, np.pi)
        ru, rv = rng.uniform(1.5, 6.0) * k, rng.uniform(0.8, 3.0) * k
        du, dv = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a), -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
        img += np.exp(-((du / ru) ** 2 + (dv / rv) ** 2))[..., None] * (np.array(rng.uniform(0.4, 1.0, 3), np.float32) * rng.uniform(0.15, 0.6))
    if rng.random() < 0.4:  # a dark horizon: a tree line or ridge, or the photo in starlight
        edge = (rng.uniform(0.65, 0.92) + 0.05 * _smooth(rng, s, 6)[0] + 0.02 * np.sin(xx[0] / (rng.uniform(2, 6) * k))) * s
        ground = _cover(yy - edge[None, :])
        if photo is not None and rng.random() < 0.5:
            land = ((photo @ _LUMA) ** 1.2)[..., None] * (np.array([0.7, 0.8, 1.1], np.float32) * rng.uniform(0.01, 0.04))
        else:
            land = np.full((s, s, 3), rng.uniform(0.0, 0.015), np.float32)
        img = img * (1 - ground[..., None]) + land * ground[..., None]
    return img


@_kind("overcast_sky")
def _overcast_sky(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    yy, xx = _grid(s)
    base = rng.uniform(0.82, 0.96)
    tint = np.array([1.0 - rng.uniform(0, 0.04), 1.0 - rng.uniform(0, 0.02), 1.0], np.float32)
    grad = 1.0 + rng.uniform(-0.05, 0.05) * (yy / s - 0.5)
    clouds = 1.0 + rng.uniform(0.01, 0.035) * _smooth(rng, s, 3) + 0.015 * _smooth(rng, s, 5)
    sky = (base * grad * clouds)[..., None] * tint
    side = rng.choice(["bottom", "bottom", "left", "right"])
    depth = rng.uniform(0.1, 0.3) * s
    along, across = (xx, yy) if side == "bottom" else (yy, xx)
    toward = (across - (s - depth)) if side in ("bottom", "right") else (depth - across)  # > 0: below the base line
    trees = side != "bottom" or rng.random() < 0.5  # rooflines only along the bottom
    if trees:  # a tree line: overlapping round crowns
        n = int(rng.integers(3, 8)) * max(1, s // 128)
        cs, rs = rng.uniform(-0.1, 1.1, n) * s, rng.uniform(0.06, 0.16, n) * s
        lift = rng.uniform(0.0, 0.08, n) * s
    else:  # a roofline: buildings of different heights, some with a gable
        edges = np.cumsum(rng.uniform(0.15, 0.4, 8) * s) - rng.uniform(0, 0.2) * s
        heights = rng.uniform(0.0, 0.15, 8) * s
        gables = rng.uniform(0, 0.6, 8) * (rng.random(8) < 0.35)
    m = np.zeros((s, s), np.float32)
    which = np.zeros((s, s), np.int64)
    for off in (-0.375, -0.125, 0.125, 0.375):  # 4 samples along the edge: anti-aliased steps
        x = along + np.float32(off)
        if trees:
            h = np.max(np.sqrt(np.maximum(rs[:, None, None] ** 2 - (x[None] - cs[:, None, None]) ** 2, 0.0)) * 0.8 + lift[:, None, None] * (np.abs(x[None] - cs[:, None, None]) < rs[:, None, None]), axis=0)
        else:
            which = np.searchsorted(edges, x.ravel()).reshape(x.shape).clip(0, 7)
            left = np.where(which > 0, edges[np.maximum(which - 1, 0)], edges[0] - 0.3 * s)
            mid, half = (left + edges[which]) / 2.0, (edges[which] - left) / 2.0
            h = heights[which] + gables[which] * np.maximum(half - np.abs(x - mid), 0.0)
        m += _cover(toward + h) / 4.0
    if photo is not None:
        ground = photo
    elif trees:
        c = _hsv(rng.uniform(0.2, 0.35), rng.uniform(0.4, 0.7), rng.uniform(0.18, 0.35))
        ground = c * (1.0 + 0.15 * _smooth(rng, s, 6))[..., None]  # canopy light and shade
    else:  # facades with rows of dark windows
        cols = np.stack([_hsv(rng.uniform(0.02, 0.12), rng.uniform(0.05, 0.45), rng.uniform(0.35, 0.75)) for _ in range(8)])
        ground = cols[which]
        wx, wy = rng.uniform(5, 9) * s / 128.0, rng.uniform(6, 10) * s / 128.0
        fx, fy = np.mod(along / wx, 1.0), np.mod(toward / wy, 1.0)
        win = ((fx > 0.3) & (fx < 0.75) & (fy > 0.35) & (fy < 0.8) & (toward > 0.1 * s)).astype(np.float32)
        ground = _blend(ground, (0.12, 0.14, 0.17), win)
    out = _blend(sky, 0, m) + m[..., None] * ground
    if rng.random() < 0.5:  # power lines across the sky
        for _ in range(int(rng.integers(1, 4))):
            y0, sag = rng.uniform(0.1, 0.6) * s, rng.uniform(0.0, 0.12) * s
            yl = y0 + sag * ((2 * xx / s - 1) ** 2) + rng.uniform(-0.1, 0.1) * (xx - s / 2)
            line = _cover(rng.uniform(0.4, 0.8) * s / 128.0 - np.abs(yy - yl)) * (1.0 - m)
            out = _blend(out, (0.15, 0.15, 0.17), line)
    return out


@_kind("tiles")
def _tiles(rng: np.random.Generator, s: int, photo: np.ndarray | None) -> np.ndarray:
    yy, xx = _grid(s)
    k = s / 128.0
    a = np.deg2rad(rng.normal(0.0, 2.0))
    u = xx * np.cos(a) + yy * np.sin(a) + rng.uniform(0, 50)
    v = -xx * np.sin(a) + yy * np.cos(a) + rng.uniform(0, 50)
    mosaic = rng.random() < 0.3
    tw = (rng.uniform(4, 7) if mosaic else rng.uniform(8, 24)) * k
    th = tw * (1.0 if mosaic or rng.random() < 0.5 else rng.uniform(0.4, 0.7))
    grout = rng.uniform(0.8, 1.4 if mosaic else 2.5) * k
    iy = np.floor(v / th)
    offset = (iy % 2) * tw * 0.5 if (not mosaic and rng.random() < 0.5) else 0.0
    ix = np.floor((u + offset) / tw)
    fx, fy = (u + offset) / tw - ix, v / th - iy
    k_pal = int(rng.integers(2, 6))
    pal = _palette(rng, photo, k_pal) if photo is not None and rng.random() < 0.6 else np.stack(
        [_hsv(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.35, 0.95)) for _ in range(k_pal)]
    )
    hashed = (ix.astype(np.int64) * 73856093 ^ iy.astype(np.int64) * 19349663) & 0xFFFFF
    pick = (hashed % k_pal) if (mosaic or rng.random() < 0.5) else np.zeros_like(hashed)
    var = ((hashed // 7) % 97) / 96.0 - 0.5  # per-tile glaze variation in [-0.5, 0.5]
    tile = pal[pick] * (1.0 + 0.08 * var)[..., None]
    sheen = 1.0 + 0.06 * (0.5 - fy) + 0.03 * (0.5 - fx)  # glazed: lit from above
    tile = tile * sheen[..., None]
    dist = np.minimum(np.minimum(fx, 1 - fx) * tw, np.minimum(fy, 1 - fy) * th)
    g = _cover(grout / 2.0 - dist)
    gcol = np.array([0.8, 0.79, 0.75], np.float32) * rng.uniform(0.5, 1.0) if rng.random() < 0.75 else np.array([0.15, 0.15, 0.15], np.float32)
    return _blend(tile, gcol, g)


KINDS: tuple[str, ...] = tuple(_RENDERERS)
"""Every negative kind, in a fixed order."""
