#!/usr/bin/env bash
# GRPO with verl 0.9.x on a GPU box: the course's task and rule reward, a ~0.5B instruct model.
#
#   python scripts/verl_preprocess.py --task countdown --out ~/data/rlllm-countdown
#   MODEL=~/models/Qwen2.5-0.5B-Instruct DATA=~/data/rlllm-countdown bash scripts/verl_grpo.sh
#   DR_GRPO=1 ... bash scripts/verl_grpo.sh       # Dr. GRPO: no std division, the constant-length aggregation
#
# Needs verl and its GPU dependencies (vLLM, flash-attn) in their own environment: verl pins an
# older transformers than the course's. One node, GPUS GPUs; any extra argument is passed on to
# verl as a further override (e.g. trainer.total_epochs=1).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
MODEL=${MODEL:?set MODEL to a local folder holding a causal LM (e.g. Qwen2.5-0.5B-Instruct)}
DATA=${DATA:-$HOME/data/rlllm}
GPUS=${GPUS:-1}
if [ "${DR_GRPO:-0}" = 1 ]; then
  norm_adv=False; agg=seq-mean-token-sum-norm   # Dr. GRPO (Liu et al. 2025): A = r - mean, sum / constant
else
  norm_adv=True; agg=token-mean                  # GRPO's std-scaled advantage, DAPO's token mean
fi

python3 -m verl.trainer.main_ppo \
  algorithm.adv_estimator=grpo \
  algorithm.norm_adv_by_std_in_grpo=$norm_adv \
  algorithm.use_kl_in_reward=False \
  data.train_files="$DATA/train.parquet" \
  data.val_files="$DATA/test.parquet" \
  data.train_batch_size=128 \
  data.max_prompt_length=256 \
  data.max_response_length=512 \
  actor_rollout_ref.model.path="$MODEL" \
  actor_rollout_ref.model.enable_gradient_checkpointing=True \
  actor_rollout_ref.actor.optim.lr=1e-6 \
  actor_rollout_ref.actor.ppo_mini_batch_size=64 \
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=16 \
  actor_rollout_ref.actor.loss_agg_mode=$agg \
  actor_rollout_ref.actor.use_kl_loss=True \
  actor_rollout_ref.actor.kl_loss_coef=0.001 \
  actor_rollout_ref.actor.kl_loss_type=low_var_kl \
  actor_rollout_ref.actor.entropy_coeff=0 \
  actor_rollout_ref.rollout.name=vllm \
  actor_rollout_ref.rollout.n=8 \
  actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
  actor_rollout_ref.rollout.gpu_memory_utilization=0.5 \
  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=32 \
  actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=32 \
  reward.custom_reward_function.path="$here/rlllm_course/scale/verl_reward.py" \
  reward.custom_reward_function.name=compute_score \
  trainer.n_gpus_per_node="$GPUS" \
  trainer.nnodes=1 \
  trainer.total_epochs=3 \
  trainer.test_freq=10 \
  trainer.save_freq=-1 \
  trainer.logger='["console"]' \
  trainer.project_name=rlllm-course \
  trainer.experiment_name="grpo-$(basename "$DATA")" \
  "$@"
