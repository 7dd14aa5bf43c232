"""ReasonSet's Reasoning Enhancement Loop: generate → critique → refine → validate.

From a problem with a human seed solution, a *generator* rewrites the seed as a fully worked
solution; a *critic* scores it against a rubric (planning, exploration, verification, correctness,
clarity) and writes a critique; the generator revises from the critique; every candidate is graded
against the gold answer. The loop stops when a candidate is correct *and* scores at least the
threshold, or after ``rounds`` revisions. Every round is returned (and so stored) with its parent,
scores and critique — failed validations included: they are the negatives DPO and verifiers need.

A candidate whose answer fails validation is never accepted, whatever the critic says. A critic reply
that cannot be parsed is retried, then recorded with ``critique = "unparseable: …"`` and no scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import resources

from reasonloop.engines import load_engine
from reasonloop.engines.base import Engine, Request, user_messages
from reasonloop.generate import Inputs, Sampling, held, load_inputs, to_trajectory
from reasonloop.options import check_options, include, option
from reasonloop.progress import LogReporter, Reporter
from reasonloop.records import Generator, Problem, Trajectory
from reasonloop.store import open_store

log = logging.getLogger(__name__)

RUBRIC = ("planning", "exploration", "verification", "correctness", "clarity")
PROMPT_VERSION = "v1"


def load_prompt(name: str, version: str = PROMPT_VERSION) -> str:
    """A packaged prompt template, e.g. ``load_prompt("rel_critic")`` → ``prompts/rel_critic_v1.txt``."""
    return (
        resources.files("reasonloop.prompts").joinpath(f"{name}_{version}.txt").read_text("utf-8")
    )


def fill(template: str, **values: str) -> str:
    """Substitute ``{name}`` placeholders (templates contain literal JSON braces, so no str.format)."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", value)
    return template


@dataclass(frozen=True, slots=True)
class CriticScore:
    scores: dict[str, float]  # rubric item -> 0..1
    critique: str

    @property
    def overall(self) -> float:
        return sum(self.scores.values()) / len(self.scores) if self.scores else 0.0


def parse_critique(text: str) -> CriticScore | None:
    """Read the critic's reply: a JSON object with the rubric's 0–10 scores and a critique, or
    ``name: score`` lines. Scores are clamped to 0..10 and scaled to 0..1. None when any rubric item
    is missing. Never raises."""
    if not isinstance(text, str):
        return None
    data: dict | None = None
    for m in re.finditer(r"\{.*?\}", text, flags=re.S):
        try:
            obj = json.loads(m.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            data = {str(k).lower(): v for k, v in obj.items()}
    if data is None:
        data = {}
        for key in (*RUBRIC, "critique"):
            m = re.search(rf"(?im)^\W*{key}\W*[:=]\s*(.+)$", text)
            if m:
                data[key] = m.group(1).strip()
    scores: dict[str, float] = {}
    for key in RUBRIC:
        value = data.get(key)
        try:
            num = float(re.match(r"\s*(-?\d+(?:\.\d+)?)", str(value)).group(1))  # type: ignore[union-attr]
        except (AttributeError, ValueError, TypeError):
            return None
        scores[key] = min(max(num, 0.0), 10.0) / 10.0
    critique = data.get("critique")
    return CriticScore(scores, critique.strip() if isinstance(critique, str) else "")


@dataclass(frozen=True, slots=True)
@include(Sampling, exclude=("n", "top_p"))
class RELConfig:
    """The loop's settings (the sampling block's temperature, max_tokens and seed are the
    generator's; the critic answers greedily)."""

    rounds: int = option(3, min=0, help="Revisions after the first rewrite.")
    threshold: float = option(0.8, min=0, max=1, help="Critic score (0-1) that accepts a round.")
    critic_retries: int = option(2, cli=None, min=0, help="Retries of an unparseable critique.")
    critic_max_tokens: int = option(256, cli=None, min=1, help="Tokens of one critique at most.")

    def __post_init__(self) -> None:
        check_options(self)


@dataclass(frozen=True, slots=True, kw_only=True)
@include(RELConfig)
@include(Inputs, exclude=("engine", "unsafe_code_exec"))
class RELRunConfig:
    """``reasonloop rel`` and a recipe's ``teacher:`` section with ``method: rel``."""

    problems: str = option(cli="--problems", help="Problems with seed solutions (name or file).")
    generator: str = option("default", help="Engine that writes and revises.")
    critic: str = option("default", help="Engine that scores against the rubric.")

    def __post_init__(self) -> None:
        check_options(self)

    def loop(self) -> RELConfig:
        names = [f.name for f in dataclasses.fields(RELConfig)]
        return RELConfig(**{n: getattr(self, n) for n in names})


@dataclass(frozen=True, slots=True)
class RELSummary:
    problems: int
    accepted: int
    rounds: int
    correct_rounds: int


def run_rel_stage(
    config: RELRunConfig,
    reporter: Reporter | None = None,
    *,
    generator: Engine | None = None,
    critic: Engine | None = None,
    store=None,
    problems: Sequence[Problem] | None = None,
) -> RELSummary:
    """The ``rel`` stage: a chain per problem, every round stored as it ends (stage ``rel``);
    a rerun continues each chain after its stored rounds. Engines, store and problems are opened
    here unless passed in."""

    reporter = reporter or LogReporter()
    cfg = config.loop()
    probs = list(problems) if problems is not None else load_inputs(config, config.problems)
    accepted_ = rounds = correct = 0
    with ExitStack() as stack:
        generator = held(stack, generator, lambda: load_engine(config.generator))
        if critic is None and config.critic == config.generator:
            critic = generator
        critic = held(stack, critic, lambda: load_engine(config.critic))
        st = held(stack, store, lambda: open_store(config.store))
        st.add_problems(probs)
        with reporter.task("rel", len(probs)) as update:
            for n, p in enumerate(probs, 1):
                done = list(st.trajectories(problem_id=p.id, stage="rel"))
                chain = run_rel(
                    p,
                    generator,
                    critic,
                    cfg,
                    done=done,
                    on_round=lambda t: st.add_trajectories([t], stage="rel"),
                )
                summ = chain_summary(chain, cfg.threshold)
                accepted_ += bool(summ["accepted"])
                rounds += int(summ["rounds"])  # type: ignore[call-overload]
                correct += int(summ["correct_rounds"])  # type: ignore[call-overload]
                update(n, note=f"{accepted_} accepted")
    return RELSummary(len(probs), accepted_, rounds, correct)


def round_id(problem_id: str, generator: str, round_: int, seed: int) -> str:
    """The stable id of one REL round: the same problem, generator, round and seed → the same id."""
    key = f"rel|{problem_id}|{generator}|{round_}|{seed}"
    return "rel-" + hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


def accepted(t: Trajectory, threshold: float) -> bool:
    """A round is accepted only when its answer is validated and the critic's mean score passes."""
    if t.verdict is None or not t.verdict.correct or not t.critic_scores:
        return False
    return sum(t.critic_scores.values()) / len(t.critic_scores) >= threshold


def run_rel(
    problem: Problem,
    generator: Engine,
    critic: Engine,
    cfg: RELConfig = RELConfig(),
    *,
    done: Sequence[Trajectory] = (),
    on_round: Callable[[Trajectory], None] | None = None,
) -> list[Trajectory]:
    """Run (or resume) the loop on one problem and return every round, oldest first.

    ``done``: rounds already stored for this problem (resuming picks up after the last one).
    ``on_round`` is called with each new round as soon as it exists, so a caller can store it
    before the next model call.
    """
    chain = sorted(done, key=lambda t: t.generator.round if t.generator else 0)
    if chain and (accepted(chain[-1], cfg.threshold) or len(chain) > cfg.rounds):
        return list(chain)
    seed_solution = problem.solution or f"The answer is {problem.answer}."
    while len(chain) <= cfg.rounds:
        r = len(chain)
        if r == 0:
            prompt = fill(
                load_prompt("rel_rewrite"), problem=problem.problem, seed_solution=seed_solution
            )
            role = "rel-generator"
        else:
            prev = chain[-1]
            note = (
                ""
                if prev.verdict and prev.verdict.correct
                else "The previous final answer was checked and is WRONG: find the error. "
                f"The human solution reaches: {problem.answer}."
            )
            prompt = fill(
                load_prompt("rel_revise"),
                problem=problem.problem,
                candidate=prev.text,
                critique=prev.critique or "(no critique)",
                validation_note=note,
            )
            role = "rel-revision"
        seed = cfg.seed * 1000 + r
        req = Request(
            messages=user_messages(prompt),
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            seed=seed,
        )
        sample = generator.generate([req])[0].samples[0]
        made_by = Generator(
            engine=generator.spec,
            model=generator.model,
            round=r,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            seed=seed,
            role=role,
        )
        score, critique_note = _critique(problem, sample.text, critic, cfg)
        t = dataclasses.replace(
            to_trajectory(problem, sample, made_by),
            parent=chain[-1].id if chain else None,
            critic_scores=score.scores if score else None,
            critique=score.critique if score else critique_note,
            id=round_id(problem.id, generator.spec, r, cfg.seed),
        )
        chain.append(t)
        if on_round:
            on_round(t)
        log.debug(
            "REL %s round %d: correct=%s score=%s",
            problem.id,
            r,
            t.verdict is not None and t.verdict.correct,
            score and score.overall,
        )
        if accepted(t, cfg.threshold):
            break
    return chain


def _critique(
    problem: Problem, candidate: str, critic: Engine, cfg: RELConfig
) -> tuple[CriticScore | None, str]:
    prompt = fill(load_prompt("rel_critic"), problem=problem.problem, candidate=candidate)
    last = ""
    for attempt in range(cfg.critic_retries + 1):
        req = Request(
            messages=user_messages(prompt),
            temperature=0.0 if attempt == 0 else 0.7,
            max_tokens=cfg.critic_max_tokens,
            seed=cfg.seed * 1000 + attempt,
        )
        last = critic.generate([req])[0].samples[0].text
        score = parse_critique(last)
        if score is not None:
            return score, ""
    return None, f"unparseable: {last[:200]!r}"


def chain_summary(chain: Sequence[Trajectory], threshold: float) -> dict[str, object]:
    """Rounds, whether one was accepted, and the best critic score, for a progress line."""
    best = max(
        (sum(t.critic_scores.values()) / len(t.critic_scores) for t in chain if t.critic_scores),
        default=0.0,
    )
    return {
        "rounds": len(chain),
        "accepted": any(accepted(t, threshold) for t in chain),
        "best_score": best,
        "correct_rounds": sum(bool(t.verdict and t.verdict.correct) for t in chain),
    }


__all__ = [
    "RUBRIC",
    "CriticScore",
    "RELConfig",
    "RELRunConfig",
    "RELSummary",
    "accepted",
    "chain_summary",
    "fill",
    "load_prompt",
    "parse_critique",
    "round_id",
    "run_rel",
    "run_rel_stage",
]
