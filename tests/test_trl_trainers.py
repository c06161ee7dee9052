"""The course's losses against TRL 1.16's trainers on the same model and data: the response-only
SFT loss (``SFTTrainer``), the reward model's Bradley-Terry loss (``RewardTrainer``) and DPO's
sigmoid loss (``DPOTrainer``). (GRPO's is in test_llm_losses.py.)

Each test hands TRL a tiny random assistant model (saved to a temp folder: no download),
lets TRL tokenize and collate the data its own way, calls its ``compute_loss`` and compares
it with the course's loss from its own tokenizing, pooling and log-prob sums.
"""

import copy

import pytest
import torch

from rlllm_course.llm.dpo import batch_logps
from rlllm_course.llm.losses import bradley_terry_loss, dpo_loss
from rlllm_course.llm.model import load_policy
from rlllm_course.llm.sft import response_batch, sft_loss
from rlllm_course.rlhf import reward_model as rmod

trl = pytest.importorskip("trl")

PAIRS = [{"prompt": "user: what is 482+37?\nassistant: ", "chosen": "482+37 is 519.",
          "rejected": "what a dumb question. 482+37 is 519."},
         {"prompt": "user: what is 5+3?\nassistant: ", "chosen": "sure! 5+3 is 8.", "rejected": "5+3 is 9."},
         {"prompt": "user: what is 1234+4321?\nassistant: ", "chosen": "sorry, i can not help.",
          "rejected": "1234+4321 is 6555. i am not sure."}]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: one torch thread, as the trainers use


def dataset():
    from datasets import Dataset
    return Dataset.from_list(PAIRS)


def collated(trainer):
    """TRL's own batch of every pair: its tokenizing (train_dataset) and its collator."""
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    return trainer.data_collator(rows)


def test_reward_loss_equals_trl_reward_trainer(base_dir, tmp_path):
    rm, tokenizer = rmod.load_reward_model(str(base_dir), seed=3)
    rm.eval()
    for margin, center in [(None, None), (0.5, None), (None, 0.01)]:
        data = dataset()
        if margin is not None:
            data = data.add_column("margin", [margin, 0.0, 2 * margin])
        args = trl.RewardConfig(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[], save_strategy="no",
                                center_rewards_coefficient=center, per_device_train_batch_size=len(PAIRS))
        trainer = trl.RewardTrainer(model=rm, args=args, train_dataset=data, processing_class=tokenizer)
        trainer.model.eval()
        with torch.no_grad():
            theirs = trainer.compute_loss(trainer.model, collated(trainer))
            chosen, rejected = rmod.pair_rewards(rm, tokenizer, PAIRS)
            ours, _ = bradley_terry_loss(chosen, rejected,
                                         margin=0.0 if margin is None else torch.tensor([margin, 0.0, 2 * margin]),
                                         center_coefficient=center or 0.0)
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-5, abs=1e-6), (margin, center)
    # and the rewards themselves: TRL's model output at its own pooling position
    batch = collated(trainer)
    with torch.no_grad():
        logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
    torch.testing.assert_close(logits, torch.cat([chosen, rejected]), rtol=1e-5, atol=1e-5)


def test_dpo_loss_equals_trl_dpo_trainer_sigmoid(base_dir, tmp_path):
    for beta in (0.5, 2.0):
        # fresh models for each trainer: a trainer may prepare the models it is given
        policy, tokenizer = load_policy(str(base_dir))
        reference = copy.deepcopy(policy)
        torch.manual_seed(0)
        with torch.no_grad():  # a policy that differs from its reference, so the log-ratios are not all 0
            for p in policy.parameters():
                p.add_(0.2 * torch.randn_like(p))
        policy.eval()
        args = trl.DPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[], save_strategy="no",
                             beta=beta, loss_type=["sigmoid"], per_device_train_batch_size=len(PAIRS))
        trainer = trl.DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=dataset(),
                                 processing_class=tokenizer)
        trainer.model.eval()
        with torch.no_grad():
            theirs = trainer.compute_loss(trainer.model, collated(trainer))
        prompts = [p["prompt"] for p in PAIRS]
        with torch.no_grad():  # the models as the trainer holds them (its set-up may touch the reference's buffers)
            logps = {(m, k): batch_logps(model, tokenizer, prompts, [p[k] for p in PAIRS])
                     for m, model in (("policy", trainer.model), ("ref", trainer.ref_model)) for k in ("chosen", "rejected")}
            ours, _ = dpo_loss(logps["policy", "chosen"], logps["policy", "rejected"], logps["ref", "chosen"],
                               logps["ref", "rejected"], beta=beta)
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-5), beta
        assert abs(ours.item() - 0.6931) > 0.01  # the log-ratios differ: not the trivial log 2
        metrics = trainer._metrics["eval"]
        for side in ("chosen", "rejected"):
            ratio = beta * (logps["policy", side] - logps["ref", side]).mean().item()
            assert metrics[f"rewards/{side}"][-1] == pytest.approx(ratio, rel=1e-5), (beta, side)


def test_sft_loss_equals_trl_sft_trainer_on_completions(base_dir, tmp_path):
    # prompt/completion rows: TRL takes the loss on the completion and its eos only, as sft.response_batch labels it
    from datasets import Dataset
    policy, tokenizer = load_policy(str(base_dir))
    rows = [{"prompt": p["prompt"], "completion": p["chosen"]} for p in PAIRS]
    args = trl.SFTConfig(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[], save_strategy="no",
                         per_device_train_batch_size=len(rows))
    trainer = trl.SFTTrainer(model=policy, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    trainer.model.eval()
    batch = collated(trainer)
    with torch.no_grad():
        theirs = trainer.compute_loss(trainer.model, batch)
        input_ids, attention_mask, labels = response_batch([r["prompt"] for r in rows], [r["completion"] for r in rows],
                                                           tokenizer)
        ours = sft_loss(trainer.model(input_ids=input_ids, attention_mask=attention_mask).logits, labels)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)
    # the same tokens are labelled on both sides: the completion and its eos, never the prompt
    assert (batch["labels"] != -100).sum().item() == (labels != -100).sum().item()
