"""LaTeX for the equations with the current numbers in them. Pure string building, no streamlit."""
from __future__ import annotations

import math

import numpy as np

from ..figures import display_decimals

EQUATION_MAX_SIDE = 6  # beyond this, matrices in an equation stop being readable on a projector
TERMS_SHOWN = 6        # a dot product with more terms shows the first ones, "⋯" and the last one


def num(v: float, dec: int) -> str:
    s = f"{v:.{dec}f}"
    return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s.replace("-", "−")


def bmatrix(M: np.ndarray, dec: int) -> str:
    rows = [" & ".join(num(v, dec) for v in row) for row in np.asarray(M)]
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def fits_equation(*arrays: np.ndarray) -> bool:
    return all(max(a.shape) <= EQUATION_MAX_SIDE for a in arrays)


def scale_text(s: float) -> str:
    return f"{s:.4g}"


def delta_equation(A: np.ndarray, B: np.ndarray, dW: np.ndarray, s: float) -> str:
    """ΔW = s·A·B with the numbers, e.g. for the seed: 1 · [5×2] · [2×3] = [5×3]."""
    d_ab, d_w = display_decimals(A, B), display_decimals(dW, max_decimals=4)
    return (rf"\Delta W_Q = s\,A_Q B_Q = {scale_text(s)} \cdot {bmatrix(A, d_ab)} {bmatrix(B, d_ab)}"
            rf" = {bmatrix(dW, d_w)}")


def forward_equation(X: np.ndarray, W_merged: np.ndarray, Q: np.ndarray) -> str:
    """Q = X·(W + ΔW) with the numbers."""
    return (rf"Q = X\,(W_Q + \Delta W_Q) = {bmatrix(X, display_decimals(X))}"
            rf" {bmatrix(W_merged, display_decimals(W_merged, max_decimals=4))}"
            rf" = {bmatrix(Q, display_decimals(Q, max_decimals=4))}")


def _dot(u: np.ndarray, v: np.ndarray, dec: int) -> str:
    wrap = lambda x: num(x, dec) if x >= 0 else f"({num(x, dec)})"
    terms = [rf"{wrap(a)}\cdot{wrap(b)}" for a, b in zip(u, v)]
    if len(terms) > TERMS_SHOWN:
        terms = terms[: TERMS_SHOWN - 1] + [r"\cdots", terms[-1]]
    return " + ".join(terms)


def cell_breakdown(X: np.ndarray, W: np.ndarray, A: np.ndarray, B: np.ndarray, s: float,
                   i: int, j: int) -> list[str]:
    """Q[i,j] = X[i,:]·W[:,j] + s·(X[i,:]·A)·B[:,j], one line per part, indices shown from 1."""
    x, w = X[i], W[:, j]
    u = x @ A                   # the row of X squeezed through the rank-r bottleneck (1×r)
    base, lora_part = float(x @ w), float(s * (u @ B[:, j]))
    dec_in = display_decimals(X, W, A, B)
    dec_out = max(display_decimals(np.array([base, lora_part, *u]), max_decimals=4), dec_in)
    row, col = i + 1, j + 1  # as the page numbers them, from 1
    u_entries = ", ".join(num(v, dec_out) for v in u)
    return [
        rf"X_{{{row},:}}\cdot W_{{:,{col}}} = {_dot(x, w, dec_in)} = {num(base, dec_out)}",
        rf"X_{{{row},:}}\,A_Q = [\,{u_entries}\,] \quad (1\times{len(u)}\text{{: the rank-}}r\text{{ bottleneck}})",
        rf"s\,(X_{{{row},:}}A_Q)\cdot B_{{:,{col}}} = {scale_text(s)}\cdot({_dot(u, B[:, j], dec_out)}) = {num(lora_part, dec_out)}",
        rf"Q_{{{row},{col}}} = {num(base, dec_out)} + {num(lora_part, dec_out)} = {num(base + lora_part, dec_out)}",
    ]


# --- training --------------------------------------------------------------------------------

def _mat_or_shape(M: np.ndarray, max_decimals: int = 4) -> str:
    """The matrix with its numbers when it is small, else just its shape."""
    if max(M.shape) <= EQUATION_MAX_SIDE:
        return bmatrix(M, display_decimals(M, max_decimals=max_decimals))
    return rf"(\text{{{M.shape[0]}×{M.shape[1]}}})"


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _mantissa_exponent(v: float, digits: int) -> tuple[str, int] | None:
    """(mantissa, power of ten) when v needs one at this many significant digits, else None (plain)."""
    if v == 0 or (1e-3 <= abs(v) < 1e4 and "e" not in f"{v:.{digits}g}"):
        return None
    mantissa, exp = f"{v:.{digits - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return mantissa.replace("-", "−"), int(exp)


def sci(v: float, digits: int = 4) -> str:
    """A number for an equation (LaTeX): plain when moderate, a·10^b otherwise."""
    if not math.isfinite(v):
        return r"\text{NaN}" if math.isnan(v) else (r"\infty" if v > 0 else r"-\infty")
    split = _mantissa_exponent(v, digits)
    if split is None:
        return f"{v:.{digits}g}".replace("-", "−")
    return rf"{split[0]}\times10^{{{split[1]}}}"


def sci_text(v: float, digits: int = 4) -> str:
    """The same number for a sentence (markdown, never LaTeX): 0.0123, or 9.442 × 10⁻⁴."""
    if not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("∞" if v > 0 else "−∞")
    split = _mantissa_exponent(v, digits)
    if split is None:
        return f"{v:.{digits}g}".replace("-", "−")
    return f"{split[0]} × 10{str(split[1]).translate(_SUPERSCRIPT)}"


def one_minus(x: float, fmt=sci_text, digits: int = 6) -> str:
    """1 − x as a number, written 1 − x when rounding would make it read exactly 1 (``fmt``: sci for LaTeX)."""
    shown = f"{1 - x:.{digits}g}"
    return shown if x == 0 or shown != "1" else f"1 − {fmt(x)}"


def loss_equation(diff: np.ndarray, loss: float) -> str:
    """L = 1/(n·k) Σ (Q − T)², with the squared terms written out when there are few."""
    n, k = diff.shape
    terms = [f"({num(v, 4)})^2" if v < 0 else f"{num(v, 4)}^2" for v in diff.ravel()]
    if len(terms) > 9:
        terms = terms[:4] + [r"\cdots"] + terms[-1:]
    return rf"L = \frac{{1}}{{{n}\cdot{k}}}\sum_{{i,j}}(Q-T)_{{ij}}^2 = \frac{{1}}{{{n * k}}}\left({' + '.join(terms)}\right) = {sci(loss)}"


def grad_equations(G: np.ndarray, grad_A: np.ndarray, grad_B: np.ndarray, s: float, n: int, k: int) -> list[str]:
    return [
        rf"G = \frac{{\partial L}}{{\partial Q}} = \frac{{2}}{{{n}\cdot{k}}}(Q - T) = {_mat_or_shape(G)}",
        rf"\frac{{\partial L}}{{\partial B_Q}} = s\,(X A_Q)^\top G = {_mat_or_shape(grad_B)}",
        rf"\frac{{\partial L}}{{\partial A_Q}} = s\,X^\top G\,B_Q^\top = {_mat_or_shape(grad_A)}",
        r"\frac{\partial L}{\partial W_Q}\ \text{: none, } W_Q \text{ is frozen } (\texttt{requires\_grad=False})",
        rf"\frac{{\partial L}}{{\partial X}} = G\,(W_Q + s\,A_Q B_Q)^\top \quad\text{{(scale }} s = {scale_text(s)}\text{{)}}",
    ]


def adamw_equations(t: int, lr: float, wd: float, beta1: float, beta2: float, eps: float) -> list[str]:
    """AdamW's five lines with this step's constants filled in."""
    c1, c2 = 1 - beta1 ** t, 1 - beta2 ** t
    return [
        rf"\theta \leftarrow \theta\,(1 - \text{{lr}}\cdot\lambda) = \theta \cdot {one_minus(lr * wd, sci)}"
        rf"\qquad(\text{{lr}} = {sci(lr)},\ \lambda = {sci(wd)})",
        rf"m \leftarrow {beta1:g}\,m + {1 - beta1:.6g}\,g \qquad v \leftarrow {beta2:g}\,v + {1 - beta2:.6g}\,g^2",
        rf"\hat m = \frac{{m}}{{1 - {beta1:g}^{{{t}}}}} = \frac{{m}}{{{c1:.6g}}} \qquad "
        rf"\hat v = \frac{{v}}{{1 - {beta2:g}^{{{t}}}}} = \frac{{v}}{{{c2:.6g}}}",
        rf"\Delta\theta = -\,\text{{lr}}\cdot\frac{{\hat m}}{{\sqrt{{\hat v}} + \varepsilon}}"
        rf"\qquad(\varepsilon = {sci(eps)})",
    ]
