"""The token pictures of module 06: labels, heat map and category grid."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rlllm_course.llm.tokenizer import build_tokenizer  # noqa: E402
from rlllm_course.plots import tokens  # noqa: E402


def test_token_labels_shorten_the_tags_and_hide_padding():
    tok = build_tokenizer()
    ids = tok("<think>1+2</think><eos>", add_special_tokens=False)["input_ids"] + [tok.pad_token_id]
    assert tokens.token_labels(tok, ids) == [["<t>", "1", "+", "2", "</t>", "eos", ""]]
    # a (B, T) array gives one list per row
    assert len(tokens.token_labels(tok, np.array([ids, ids]))) == 2


def test_heatmap_blanks_masked_cells_and_writes_the_rest():
    fig, ax = plt.subplots()
    values = np.array([[-0.1, -2.0, -5.0], [-1.0, -0.5, 0.0]])
    mask = np.array([[1, 1, 0], [0, 1, 1]])
    image = tokens.token_heatmap(ax, [["a", "b", "c"], ["d", "e", "f"]], values, mask=mask)
    # the colour scale spans the shown values only (the masked -5 is not one of them)
    assert image.get_clim() == (-2.0, 0.0)
    assert sorted(t.get_text() for t in ax.texts) == ["a", "b", "e", "f"]
    plt.close(fig)


def test_categories_draw_a_legend_and_check_their_inputs():
    fig, ax = plt.subplots()
    cats = np.array([[0, 1, 2], [1, 2, 2]])
    tokens.token_categories(ax, [["x"] * 3] * 2, cats, ["pad", "prompt", "response"], ["w", "b", "g"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["pad", "prompt", "response"]
    with pytest.raises(ValueError):  # category 2 has no colour
        tokens.token_categories(ax, [["x"] * 3] * 2, cats, ["pad", "prompt"], ["w", "b"])
    with pytest.raises(ValueError):  # 3 label rows for 2 category rows
        tokens.token_heatmap(ax, [["x"] * 3] * 3, np.zeros((2, 3)))
    plt.close(fig)
