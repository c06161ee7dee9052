"""The GPU box run (scale.gpu_run, `rlllm-course gpu-grpo`) and its measurements (scale.throughput), on a CPU.

The same code path as on a GPU: a causal LM saved to a local folder, loaded by load_policy, GRPO
steps of module 08 timed phase by phase. A tiny random Llama stands in for the real model; the
shipped tiny model, whose groups carry a reward signal, shows that the run trains.
"""

import pytest
import torch
from conftest import save_random_llama

from rlllm_course import cli
from rlllm_course.llm.grpo import GRPOConfig
from rlllm_course.llm.model import load_policy
from rlllm_course.llm.tasks import addition_problem, addition_problems, make_prompt
from rlllm_course.scale.gpu_run import chat_prompt, gpu_grpo
from rlllm_course.scale.throughput import matmul_flops_per_second, measured_grpo_step

torch.set_num_threads(1)
# The shipped tiny model reads "Q:12+34\nA:": this chat template renders verl's user message
# ("...instruction...\nWhat is 12+34?") in that form, as Qwen's template renders it in its own.
TINY_CHAT_TEMPLATE = ("Q:{{ messages[0]['content'].split('What is ')[1].rstrip('?') }}\n"
                      "{% if add_generation_prompt %}A:{% endif %}")


@pytest.fixture(scope="module")
def random_folder(tmp_path_factory):
    """A random 2-layer Llama and the course's tokenizer (no chat template) in a temp folder."""
    folder = tmp_path_factory.mktemp("random-llama")
    save_random_llama(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """The shipped tiny model saved to a temp folder, its tokenizer with a chat template."""
    folder = tmp_path_factory.mktemp("tiny-chat")
    model, tokenizer = load_policy("tiny")
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def small(folder, **changes):
    return GRPOConfig(**{"model": str(folder), "device": "cpu", "task": "addition", "steps": 2,
                         "prompts_per_step": 3, "group_size": 4, "max_new_tokens": 16, **changes})


def test_the_run_takes_its_steps_and_its_figures_add_up(random_folder):
    lines = []
    model, report = gpu_grpo(small(random_folder), out=lines.append)
    steps, total = report["steps"], report["total"]
    assert [s["step"] for s in steps] == [1, 2]
    assert len(lines) == 1 + 2 + 1  # the header, a line per step, the total
    n = sum(p.numel() for p in model.parameters())
    for s, line in zip(steps, lines[1:3]):
        # a rate is its tokens over its seconds; a step is its two phases
        assert s["generated_per_second"] == pytest.approx(s["generated_tokens"] / s["generation_seconds"], rel=1e-12)
        assert s["trained_per_second"] == pytest.approx(s["trained_tokens"] / s["update_seconds"], rel=1e-12)
        assert s["seconds"] == pytest.approx(s["generation_seconds"] + s["update_seconds"], rel=1e-12)
        # one update per batch trains on exactly the generated tokens; 3 x 4 rows of at most 16
        assert s["trained_tokens"] == s["generated_tokens"] and 0 < s["generated_tokens"] <= 12 * 16
        # achieved FLOP/s: 2N per prompt and generated token; the update 6N plus 2N for the reference
        tokens = s["prompt_tokens"] + s["generated_tokens"]
        assert s["generation_flops"] == pytest.approx(2 * n * tokens / s["generation_seconds"], rel=1e-12)
        assert s["update_flops"] == pytest.approx((6 + 2) * n * tokens / s["update_seconds"], rel=1e-12)
        assert f"generated {s['generated_tokens']} tokens" in line and "tok/s" in line
    # the totals are sums, and their rates total tokens over total seconds (not a mean of rates)
    for key in ("generated_tokens", "trained_tokens", "generation_seconds", "update_seconds", "seconds"):
        assert total[key] == pytest.approx(sum(s[key] for s in steps), rel=1e-12)
    assert total["generated_per_second"] == pytest.approx(total["generated_tokens"] / total["generation_seconds"])
    assert total["trained_per_second"] == pytest.approx(total["trained_tokens"] / total["update_seconds"])
    # on a CPU the peak is the process's RSS, and the run says so
    assert total["peak_memory_bytes"] == max(s["peak_memory_bytes"] for s in steps) > 2 ** 20
    assert "RSS" in report["memory"] and "RSS" in lines[-1] and lines[-1].startswith("total (2 steps)")


def test_tokens_are_the_completion_masks_not_the_padding():
    # the trained tiny model ends its answers at different lengths, so the batch holds padding
    model, tokenizer = load_policy("tiny")
    problems = addition_problems(4, seed=0)
    prompts = [make_prompt(p) for p in problems]
    config = GRPOConfig(group_size=4, max_new_tokens=24, log_kl=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    torch.manual_seed(0)
    log, measured = measured_grpo_step(model, None, optimizer, problems, prompts, tokenizer, config)
    lengths = log["lengths"]  # (B,) each row's completion mask, summed by grpo_update
    assert max(lengths) > min(lengths)  # rows of different lengths: padded to the longest
    assert measured.generated_tokens == sum(lengths) < len(lengths) * max(lengths)
    # prompts too: each row reads its own prompt's tokens, not the left padding
    own = sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts) * config.group_size
    assert measured.prompt_tokens == own
    # no reference model: the update costs 6N a token, no 2N for reference log-probs
    n = sum(p.numel() for p in model.parameters())
    assert measured.flops(n).logprobs == 0
    assert measured.flops(n).update == 6 * n * (measured.prompt_tokens + measured.generated_tokens)


def test_the_run_trains_the_model_through_its_chat_template(tiny_folder):
    _, tokenizer = load_policy(str(tiny_folder))
    # verl's user message, through the model's own template: the prompt the model was trained on
    assert chat_prompt(tokenizer, addition_problem(12, 34)) == "Q:12+34\nA:"
    lines = []
    model, report = gpu_grpo(small(tiny_folder, steps=2, prompts_per_step=4, max_new_tokens=24), out=lines.append)
    # some groups mix right and wrong answers, so the advantages are not all zero ...
    assert any(0 < s["accuracy"] < 1 or 0 < s["format"] < 1 for s in report["steps"])
    # ... and the policy moved away from the saved weights
    saved, _ = load_policy(str(tiny_folder))
    changed = [not torch.equal(a, b) for a, b in zip(model.parameters(), saved.parameters())]
    assert any(changed)


def test_a_tokenizer_without_a_chat_template_gets_the_message_as_plain_text(random_folder):
    _, tokenizer = load_policy(str(random_folder))
    prompt = chat_prompt(tokenizer, addition_problem(12, 34))
    assert prompt.startswith("User: Solve the problem.") and prompt.endswith("What is 12+34?\nAssistant:")


def test_bf16_autocast_and_gradient_checkpointing_take_the_same_path(random_folder):
    # on a GPU these are the memory savers; torch and transformers run both on a CPU too
    lines = []
    model, report = gpu_grpo(small(random_folder, steps=1), bf16=True, gradient_checkpointing=True,
                             out=lines.append)
    assert "bf16 autocast on" in lines[0]
    assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())  # transformers' layer flag
    assert next(model.parameters()).dtype == torch.float32  # the master weights stay float32
    assert report["steps"][0]["generated_tokens"] > 0


def test_a_model_that_is_not_a_local_folder_is_refused(tmp_path, capsys):
    for model in ("Qwen/Qwen2.5-0.5B-Instruct", str(tmp_path)):  # a hub name; a folder without config.json
        with pytest.raises(ValueError, match="--model"):
            gpu_grpo(small(model))
        with pytest.raises(SystemExit) as stop:
            cli.main(["gpu-grpo", "--model", model])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert "--model" in err and "nothing is downloaded" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is missing")
def test_cuda_without_cuda_is_refused(random_folder, capsys):
    with pytest.raises(ValueError, match="--device"):
        gpu_grpo(small(random_folder, device="cuda"))
    with pytest.raises(SystemExit):
        cli.main(["gpu-grpo", "--model", str(random_folder), "--device", "cuda"])
    err = capsys.readouterr().err
    assert "--device" in err and "CUDA is not available" in err


def test_the_command_prints_a_line_per_step_and_the_total(random_folder, capsys):
    cli.main(["gpu-grpo", "--model", str(random_folder), "--device", "cpu", "--steps", "2", "--prompts", "2",
              "--group-size", "2", "--max-new-tokens", "8", "--task", "addition"])
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out[1:]] == ["step 1/2", "step 2/2", "total (2 steps)"]
    assert all("tok/s" in line and "peak memory" in line for line in out[1:])
    with pytest.raises(SystemExit):
        cli.main(["gpu-grpo", "--model", str(random_folder), "--steps", "0"])
    assert "--steps must be >= 1" in capsys.readouterr().err


def test_matmul_flops_per_second_is_positive_and_finite():
    rate = matmul_flops_per_second(size=64, repeats=2)
    assert 1e6 < rate < 1e15  # between a megaFLOP and a petaFLOP per second on any machine
