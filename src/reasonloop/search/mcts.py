"""Monte-Carlo tree search over reasoning steps or fixed-size mini-steps (Marco-o1 style).

The root is the empty response; a node adds one step (or mini-step, see
:class:`~reasonloop.search.steps.StepSpec`) to its parent's text. One iteration:

1. **Selection** — from the root, while the node has children, go to the first unvisited child,
   else to the child maximising UCT ``Q + c * sqrt(ln N_parent / N_child)`` (ties: the first).
2. **Expansion** — a leaf that is not complete and not at ``max_depth`` is expanded when it has
   been visited before (the root: always): ``children`` continuations of one step are sampled in
   one request (identical texts kept once); the first child is the one simulated.
   An unvisited leaf is simulated without expanding it.
3. **Simulation** — a rollout samples the rest of the response from the node (complete nodes are
   scored as they are, with no rollout, and their reward is cached); the reward is
   ``reward.score(problem, prompt, node text + rollout, sample)``, where ``sample`` joins the
   log-probs of the path's steps and the rollout. The default reward is the Marco-o1 token
   confidence averaged over that whole response; a reward model, or the verifier
   (:class:`~reasonloop.search.scorers.VerifierScorer`, an **oracle**: results are flagged
   ``details["oracle"]``) plug in the same way.
4. **Backup** — every node on the path from the simulated node to the root gets ``N += 1`` and
   ``W += reward``; its value ``Q = W / N`` is the mean reward of the rollouts through it.

The response (``final="visits"``): descend from the root to the most-visited child (ties: higher
``Q``, then the first) until a leaf, and take the best-rewarded rollout made from that leaf.
``final="reward"``: the best-rewarded rollout of the whole search. Every rollout is a candidate.

:meth:`MCTS.search` also returns the root :class:`Node`, so callers (and tests) can read the tree.
What it does not do: batch rollouts across iterations (each iteration is one or two requests),
reuse a tree across problems, or prune.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from reasonloop import search
from reasonloop.engines.base import Engine, Prompt, Request, Sample
from reasonloop.errors import ConfigError
from reasonloop.generate import Sampling
from reasonloop.options import check_options, include
from reasonloop.records import Problem
from reasonloop.search import Candidate, Extract, SearchResult, Spend
from reasonloop.search.scorers import Scorer, TokenConfidence, is_oracle
from reasonloop.search.steps import StepSpec


@dataclass(eq=False, slots=True)
class Node:
    """One node of the search tree: the response so far (``text``) ends with this node's step.

    ``visits`` (N) and ``value_sum`` (W) are backed up from rollouts; ``value`` is W / N.
    ``rollouts`` are the rollouts simulated from this node, each with its reward as ``score``.
    """

    step: str
    text: str
    depth: int
    parent: Node | None = field(default=None, repr=False)
    sample: Sample | None = field(default=None, repr=False)
    complete: bool = False
    children: list[Node] = field(default_factory=list, repr=False)
    visits: int = 0
    value_sum: float = 0.0
    rollouts: list[Candidate] = field(default_factory=list, repr=False)
    terminal_reward: float | None = None

    @property
    def value(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    def path(self) -> list[Node]:
        """The nodes from the root down to this one."""
        out: list[Node] = []
        node: Node | None = self
        while node is not None:
            out.append(node)
            node = node.parent
        return out[::-1]

    def samples(self) -> list[Sample]:
        """The step samples on the path from the root to this node."""
        return [n.sample for n in self.path() if n.sample is not None]

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.samples())

    def walk(self) -> list[Node]:
        """This node and all its descendants, depth first, children in order."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out

    def to_dict(self) -> dict[str, Any]:
        """The subtree as plain data: step, visits, value, complete, children."""
        return {
            "step": self.step,
            "visits": self.visits,
            "value": self.value,
            "complete": self.complete,
            "children": [c.to_dict() for c in self.children],
        }


def uct(child: Node, parent_visits: int, c: float) -> float:
    """``Q + c * sqrt(ln N_parent / N_child)``; an unvisited child scores +inf."""
    if child.visits == 0:
        return math.inf
    return child.value + c * math.sqrt(math.log(parent_visits) / child.visits)


@dataclass(frozen=True, slots=True)
@include(Sampling, exclude=("n",))
class MCTS:
    """MCTS over steps or mini-steps (see the module docstring).

    ``max_tokens`` caps one response (path steps plus rollout); a node whose path spent it is
    treated as complete. Requests use seeds ``seed, seed+1, ...`` in the order they are made.
    """

    reward: Scorer = field(default_factory=TokenConfidence)
    iterations: int = 16
    children: int = 3
    c: float = 1.0
    max_depth: int = 8
    step: StepSpec = field(default_factory=StepSpec)
    final: Literal["visits", "reward"] = "visits"
    dedupe: bool = True
    extract: Extract | None = None

    def __post_init__(self) -> None:
        check_options(self)
        for name in ("iterations", "children", "max_depth"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"MCTS.{name} must be >= 1, got {value}")
        if self.c < 0:
            raise ConfigError(f"MCTS.c must be >= 0, got {self.c}")
        if self.final not in ("visits", "reward"):
            raise ConfigError(f"MCTS.final must be 'visits' or 'reward', got {self.final!r}")

    def run(self, problem: Problem, prompt: Prompt | None, engine: Engine) -> SearchResult:
        return self.search(problem, prompt, engine)[0]

    def search(
        self, problem: Problem, prompt: Prompt | None, engine: Engine
    ) -> tuple[SearchResult, Node]:
        """Run the search; the result and the root of the tree."""
        run = _Run(
            self, problem, search.default_prompt(problem) if prompt is None else prompt, engine
        )
        root = Node(step="", text="", depth=0)
        for _ in range(self.iterations):
            node = root
            while node.children:
                node = max(node.children, key=lambda ch: uct(ch, node.visits, self.c))
            if run.expandable(node) and (node.visits > 0 or node.parent is None):
                run.expand(node)
                if node.children:
                    node = node.children[0]
            reward = run.simulate(node)
            for n in node.path():
                n.visits += 1
                n.value_sum += reward
        return run.result(root), root


class _Run:
    """The mutable state of one search: engine, prompt, seeds, token spend, every rollout."""

    def __init__(self, cfg: MCTS, problem: Problem, prompt: Prompt, engine: Engine):
        self.cfg = cfg
        self.problem = problem
        self.prompt = prompt
        self.engine = engine
        self.base = search.render_prompt(engine, prompt)
        self.logprobs, self.top = search.wanted_logprobs(cfg.reward)
        self.spend = Spend()
        self.seed = cfg.seed
        self.extract = cfg.extract or search.extract_for(problem)
        self.rollouts: list[Candidate] = []

    def _request(self, text: str, n: int, max_tokens: int, stop: tuple[str, ...]) -> Request:
        req = Request(
            prompt=self.base + text,
            n=n,
            temperature=self.cfg.temperature,
            top_p=self.cfg.top_p,
            max_tokens=max_tokens,
            stop=stop,
            seed=self.seed,
            logprobs=self.logprobs,
            top_logprobs=self.top,
        )
        self.seed = None if self.seed is None else self.seed + n
        return req

    def left(self, node: Node) -> int:
        return self.cfg.max_tokens - node.tokens

    def expandable(self, node: Node) -> bool:
        return not node.complete and node.depth < self.cfg.max_depth and self.left(node) > 0

    def expand(self, node: Node) -> None:
        budget = min(self.cfg.step.max_tokens, self.left(node))
        req = self._request(node.text, self.cfg.children, budget, self.cfg.step.stop)
        (result,) = self.spend.generate(self.engine, [req])
        seen: set[str] = set()
        for s in result.samples:
            text, complete = self.cfg.step.extend(node.text, s.text, s.finish_reason)
            if self.cfg.dedupe and text in seen:
                continue
            seen.add(text)
            child = Node(
                step=text[len(node.text) :],
                text=text,
                depth=node.depth + 1,
                parent=node,
                sample=s,
                complete=complete,
            )
            if not complete and node.tokens + s.tokens >= self.cfg.max_tokens:
                child.complete = True  # spent the budget: score it as it is
            node.children.append(child)

    def simulate(self, node: Node) -> float:
        if node.complete or self.left(node) <= 0:
            if node.terminal_reward is None:
                reward = self._score(node.text, node.samples())
                node.terminal_reward = reward
                finish = node.sample.finish_reason if node.sample else "stop"
                self._keep(node, node.text, node.tokens, finish, reward)
            return node.terminal_reward
        req = self._request(node.text, 1, self.left(node), ())
        (result,) = self.spend.generate(self.engine, [req])
        s = result.samples[0]
        text = node.text + s.text
        reward = self._score(text, [*node.samples(), s])
        self._keep(node, text, node.tokens + s.tokens, s.finish_reason, reward)
        return reward

    def _score(self, text: str, parts: list[Sample]) -> float:
        return float(
            self.cfg.reward.score(self.problem, self.prompt, text, search.join_sample(text, parts))
        )

    def _keep(self, node: Node, text: str, tokens: int, finish: str, reward: float) -> None:
        cand = Candidate(text, self.extract(text), tokens, finish, reward)
        node.rollouts.append(cand)
        self.rollouts.append(cand)

    def result(self, root: Node) -> SearchResult:
        chosen: Candidate | None = None
        path = [root]
        if self.cfg.final == "visits":
            node = root
            while node.children and any(ch.visits for ch in node.children):
                node = max(node.children, key=lambda ch: (ch.visits, ch.value))
                path.append(node)
            if node.rollouts:
                chosen = max(node.rollouts, key=lambda r: search.finite(r.score))
        if chosen is None:
            chosen = max(self.rollouts, key=lambda r: search.finite(r.score))
        details = {
            "strategy": "mcts",
            "iterations": self.cfg.iterations,
            "nodes": len(root.walk()),
            "rollouts": len(self.rollouts),
            "path": [{"visits": n.visits, "value": n.value} for n in path],
            "oracle": is_oracle(self.cfg.reward),
        }
        return SearchResult(
            chosen.text,
            chosen.answer,
            self.spend.tokens,
            tuple(self.rollouts),
            details,
            self.spend.prompt_tokens,
        )


__all__ = ["MCTS", "Node", "uct"]
