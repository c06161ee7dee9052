"""Pictures of token sequences: one cell per token, coloured by a value or by a category.

A row is one sequence (prompt then completion); ``labels`` gives the text written
in each cell (``token_labels`` turns token ids into short labels, so that the
one-token tags ``<think>`` and ``<answer>`` fit in a cell). Used for per-token
log-probabilities (a heat map) and for attention / completion masks.
"""

import matplotlib.colors as mcolors
import numpy as np

SHORT_LABELS = {"<think>": "<t>", "</think>": "</t>", "<answer>": "<a>", "</answer>": "</a>",
                "<eos>": "eos", "<pad>": "", "<bos>": "bos", "<unk>": "?", "\n": "\\n", " ": "␣"}


def token_labels(tokenizer, ids):
    """Short display labels for a (B, T) or (T,) array of token ids: list of lists of str."""
    ids = np.asarray(ids)
    rows = ids[None, :] if ids.ndim == 1 else ids
    return [[SHORT_LABELS.get(t, t) for t in tokenizer.convert_ids_to_tokens([int(i) for i in row])]
            for row in rows]


def _write(ax, labels, rgba, fontsize):
    """Write each cell's label in black or white, whichever reads better on its colour."""
    for b, row in enumerate(labels):
        for t, text in enumerate(row):
            if text:
                r, g, bl, _ = rgba[b, t]
                light = 0.299 * r + 0.587 * g + 0.114 * bl > 0.55
                ax.text(t, b, text, ha="center", va="center", fontsize=fontsize,
                        color="black" if light else "white")


def _frame(ax, shape, row_names):
    B, T = shape
    ax.set_xticks(np.arange(T))
    ax.set_xticklabels([str(t) if t % 5 == 0 else "" for t in range(T)], fontsize=7)
    ax.set_yticks(np.arange(B))
    ax.set_yticklabels(row_names if row_names is not None else [str(b) for b in range(B)], fontsize=8)
    ax.set_xticks(np.arange(T + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(B + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0)
    ax.tick_params(which="minor", length=0)


def token_heatmap(ax, labels, values, mask=None, cmap="viridis", vmin=None, vmax=None,
                  row_names=None, fontsize=8):
    """Tokens as cells coloured by `values`; cells where `mask` is 0 are left blank.

    labels: list of B lists of T strings; values: (B, T) floats (e.g. log pi(a_t | s_t));
    mask: (B, T) 0/1 or None (all shown). Returns the image, for ``fig.colorbar``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or len(labels) != values.shape[0]:
        raise ValueError(f"values must have shape (B, T) with B = len(labels) = {len(labels)}, "
                         f"got {values.shape}")
    shown = np.ones_like(values, dtype=bool) if mask is None else np.asarray(mask).astype(bool)
    masked = np.ma.masked_array(values, mask=~shown)  # (B, T)
    vmin = float(masked.min()) if vmin is None else vmin
    vmax = float(masked.max()) if vmax is None else vmax
    image = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    norm = mcolors.Normalize(vmin, vmax)
    rgba = image.cmap(norm(values))  # (B, T, 4)
    rgba[~shown] = (1.0, 1.0, 1.0, 1.0)
    _write(ax, [[text if s else "" for text, s in zip(row, srow)] for row, srow in zip(labels, shown)],
           rgba, fontsize)
    _frame(ax, values.shape, row_names)
    return image


def token_categories(ax, labels, categories, names, colors, row_names=None, fontsize=8):
    """Tokens as cells coloured by an integer category (e.g. padding / prompt / response / eos).

    labels: list of B lists of T strings; categories: (B, T) ints in [0, len(names));
    names, colors: one name and one matplotlib colour per category. Adds a legend
    above the axes. Returns the image.
    """
    categories = np.asarray(categories)
    if categories.ndim != 2 or len(labels) != categories.shape[0]:
        raise ValueError(f"categories must have shape (B, T) with B = len(labels) = {len(labels)}, "
                         f"got {categories.shape}")
    if len(names) != len(colors) or categories.min() < 0 or categories.max() >= len(names):
        raise ValueError("categories must index names and colors (one colour per name)")
    cmap = mcolors.ListedColormap(colors)
    image = ax.imshow(categories, cmap=cmap, vmin=-0.5, vmax=len(colors) - 0.5, aspect="auto",
                      interpolation="nearest")
    rgba = cmap(categories)  # (B, T, 4)
    _write(ax, labels, rgba, fontsize)
    _frame(ax, categories.shape, row_names)
    handles = [ax.scatter([], [], marker="s", s=60, color=c, label=n) for n, c in zip(names, colors)]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(names),
              fontsize=8, frameon=False)
    return image
