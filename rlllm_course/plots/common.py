"""Pictures shared by several modules: learning curves and episode filmstrips."""

import matplotlib.pyplot as plt
import numpy as np


def moving_average(values, window):
    """Trailing mean over `window` points; the first points average what exists."""
    values = np.asarray(values, dtype=np.float64)
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumsum[1:] - cumsum[np.arange(1, len(values) + 1) - counts]) / counts


def learning_curve(ax, values, window=100, label=None, x=None, **kwargs):
    """Raw values faint, their moving average bold, on one axis."""
    x = np.arange(len(values)) if x is None else np.asarray(x)
    line, = ax.plot(x, moving_average(values, window), label=label, **kwargs)
    ax.plot(x, values, color=line.get_color(), alpha=0.15, linewidth=0.8)
    return line


def filmstrip(frames, titles=None, columns=6, size=2.2):
    """Show rendered frames (H, W, 3) side by side; returns the figure."""
    rows = int(np.ceil(len(frames) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(frames):
            ax.imshow(frames[i])
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig
