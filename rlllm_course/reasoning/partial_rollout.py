"""Partial rollouts: a fixed output-token budget per iteration (Kimi k1.5 §2.6.2).

A synchronous rollout phase lasts as long as its longest response, and long CoTs
have a long tail: most of the batch waits idle for a few stragglers. Kimi k1.5
(arXiv 2501.12599, §2.6.2) caps what any trajectory may generate in one iteration
at a fixed token `budget`. A trajectory still unfinished at the budget is saved to
a replay buffer and continued in the next iteration, from where it stopped, by the
policy of that iteration. So a response is made of segments from several
iterations; only the newest was sampled by the current policy, and the older
("stale") ones can be excluded from the loss.

This file is the bookkeeping only, as plain data; the generation is the caller's.
One iteration:

    batch = plan_iteration(new_prompts, buffer)          # the buffered ones first, then new prompts
    batch = [add_segment(t, generate_from(t.prompt, t.response), iteration, budget, eos_token_id)
             for t in batch]                             # at most `budget` new tokens each
    finished = end_iteration(batch, buffer)              # the unfinished go back to the buffer
    masks = [segment_loss_mask(t, iteration) for t in finished]

Invariants (the tests check each):
- every token is generated once: a continued trajectory keeps its segments and
  generation resumes after its last token; nothing is regenerated or dropped;
- a finished trajectory leaves the buffer: ``plan_iteration`` empties the buffer,
  ``end_iteration`` returns the finished ones and buffers only the unfinished,
  and the buffer refuses a finished (or not yet started) trajectory;
- segments are contiguous: the response is the concatenation of the segments in
  order, one per iteration the trajectory was rolled, iterations increasing; every
  segment but the last used its whole budget, and only the last may end with the eos.
A trajectory whose eos is exactly its budget-th token is finished, not buffered:
what ends a trajectory is the eos (or `max_length`), never the length of a segment.
"""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Segment:
    """The tokens one iteration generated for a trajectory.

    tokens: tuple of ids; iteration: int, the iteration (policy) that sampled them;
    logprobs: tuple of floats, the sampler's log pi_behaviour(token) of each token
    (at the sampling temperature), or () when the generator did not record them.
    A stale segment's loss needs them: the policy that sampled it is gone.
    """

    tokens: tuple
    iteration: int
    logprobs: tuple = ()

    def __post_init__(self):
        if self.logprobs and len(self.logprobs) != len(self.tokens):
            raise ValueError(f"logprobs must hold one value per token ({len(self.tokens)}), "
                             f"got {len(self.logprobs)}")


@dataclass(frozen=True)
class Trajectory:
    """A prompt and the segments of its response so far.

    prompt: whatever the caller needs to continue it (a prompt string, a problem
    dict); segments: tuple of ``Segment``; finished: the response has ended (eos
    or `max_length`). Immutable: ``add_segment`` returns a new trajectory, so a
    buffered one cannot change behind the buffer's back.
    """

    prompt: object
    segments: tuple = ()
    finished: bool = False

    @property
    def response(self):
        """The response token ids so far: the segments concatenated, a list."""
        return [t for segment in self.segments for t in segment.tokens]

    @property
    def response_length(self):
        return sum(len(segment.tokens) for segment in self.segments)


class PartialRolloutBuffer:
    """The replay buffer of unfinished trajectories, first in first out."""

    def __init__(self):
        self._trajectories = []

    def add(self, trajectory):
        """Save an unfinished trajectory (one that was rolled and cut by the budget)."""
        if trajectory.finished:
            raise ValueError("trajectory is finished: only unfinished trajectories are buffered")
        if not trajectory.segments:
            raise ValueError("trajectory has no segment yet: roll it before buffering it")
        if any(t is trajectory for t in self._trajectories):
            raise ValueError("trajectory is already in the buffer (it would be continued twice)")
        self._trajectories.append(trajectory)

    def pop_all(self):
        """Every buffered trajectory, in the order added; the buffer is left empty."""
        out, self._trajectories = self._trajectories, []
        return out

    def __len__(self):
        return len(self._trajectories)


def plan_iteration(new_prompts, buffer):
    """What this iteration's rollout phase generates: a list of ``Trajectory``.

    Every buffered trajectory is continued (the buffer is emptied), then one fresh
    trajectory per new prompt. An empty buffer continues nothing.
    """
    return buffer.pop_all() + [Trajectory(prompt) for prompt in new_prompts]


def add_segment(trajectory, tokens, iteration, budget, eos_token_id, max_length=None):
    """Append the tokens generated this iteration: the new ``Trajectory``.

    tokens: the ids generated after ``trajectory.response`` (at most `budget`,
    the eos included if the model emitted it, nothing after it). The trajectory is
    finished when tokens end with `eos_token_id`, or when the response reaches
    `max_length` tokens (a cap on the whole response, None for none). Otherwise
    generation was cut by the budget, so the segment must be exactly `budget` long.
    """
    tokens = tuple(tokens)
    if trajectory.finished:
        raise ValueError("trajectory is finished: there is nothing to continue")
    if not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be an integer >= 1 (tokens per iteration), got {budget!r}")
    last = trajectory.segments[-1].iteration if trajectory.segments else -1
    if not isinstance(iteration, int) or iteration <= last:
        raise ValueError(f"iteration must be an integer after the last segment's ({last}), got {iteration!r}")
    if len(tokens) > budget:
        raise ValueError(f"tokens must hold at most budget={budget} ids, got {len(tokens)}")
    if eos_token_id in tokens[:-1]:
        raise ValueError("tokens must stop at the eos (an eos before the last token)")
    length = trajectory.response_length + len(tokens)
    if max_length is not None and length > max_length:
        raise ValueError(f"the response would be {length} tokens, past max_length={max_length}")
    finished = (bool(tokens) and tokens[-1] == eos_token_id) or (max_length is not None and length == max_length)
    if not finished and len(tokens) != budget:
        raise ValueError(f"an unfinished segment (no eos) must use the whole budget={budget}, got {len(tokens)} "
                         f"tokens")
    return replace(trajectory, segments=trajectory.segments + (Segment(tokens, iteration),), finished=finished)


def continue_or_finish(trajectory, tokens, iteration, budget, eos_token_id, buffer, max_length=None):
    """``add_segment``, then buffer the trajectory unless it finished: the new ``Trajectory``.

    One trajectory's end of the rollout phase (``end_iteration`` does a batch).
    Nothing is buffered when the arguments are refused (ValueError).
    """
    new = add_segment(trajectory, tokens, iteration, budget, eos_token_id, max_length)
    if not new.finished:
        buffer.add(new)
    return new


def end_iteration(trajectories, buffer):
    """Close the rollout phase: buffer the unfinished trajectories, return the finished ones (in order)."""
    finished = []
    for trajectory in trajectories:
        if trajectory.finished:
            finished.append(trajectory)
        else:
            buffer.add(trajectory)
    return finished


def segment_loss_mask(trajectory, iteration, exclude_stale=True):
    """Which response tokens the loss of `iteration` trains on: a 0/1 list of length response_length.

    1 on the tokens of the segment generated at `iteration` (sampled by the
    current policy, on-policy); on the earlier, stale segments 0 when
    `exclude_stale` (the default, Kimi's option), 1 otherwise.
    """
    mask = []
    for segment in trajectory.segments:
        if segment.iteration > iteration:
            raise ValueError(f"trajectory has a segment of iteration {segment.iteration}, after iteration={iteration}")
        keep = segment.iteration == iteration or not exclude_stale
        mask += [int(keep)] * len(segment.tokens)
    return mask
