#!/usr/bin/env python
"""Generate a small synthetic relatedness data set in the pre-parsed SICK form (see data/README.md).

Each sentence describes an event -- who does what to what, where, and whether it happens -- in
one of three surface forms with a dependency parse (Stanford basic dependencies, as SICK's):

    A young man is cutting an onion in the kitchen          (active)
    An onion is being sliced by a man in the kitchen        (passive)
    There is no man cutting an onion                        (negated)

A pair is an event and a perturbed copy (another agent, a synonym, swapped roles, a location
dropped, negation, another voice, ...) and its relatedness score 1..5 is computed from how much of
the event the two sentences share, role by role (see ``relatedness``). The same words in swapped
roles ("the dog is chasing the cat" / "the cat is chasing the dog") score low, a passive
paraphrase scores 5. Nothing is taken from SICK: the lexicon and templates are our own.

    python data/generate_sick_sample.py --seed 0 --out treelstm/datasets/sick_sample

writes train/, dev/ and test/, each with a.toks, b.toks, a.parents, b.parents, a.rels, b.rels,
sim.txt and id.txt (one line per pair). The output depends only on the arguments.
"""
from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

# ---------------------------------------------------------------------------------- lexicon
# A concept is a tuple of synonyms; the first is the most common word.
PEOPLE = [("man", "guy"), ("woman", "lady"), ("boy", "kid"), ("girl",), ("chef", "cook"),
          ("player",), ("child",)]
ANIMALS = [("dog", "puppy"), ("cat", "kitten"), ("horse", "pony")]
ENTITIES = PEOPLE + ANIMALS
OBJECTS = [("onion",), ("potato",), ("ball",), ("guitar",), ("bicycle", "bike"), ("box",),
           ("apple",), ("fish",), ("rope",), ("stick",)]
ADJECTIVES = [("young", "little"), ("old",), ("tall",), ("happy", "cheerful"), ("small",)]
# Actions on objects: (present participle, past participle) per synonym.
OBJECT_ACTIONS = [(("cutting", "cut"), ("slicing", "sliced")), (("eating", "eaten"),),
                  (("holding", "held"), ("carrying", "carried")),
                  (("throwing", "thrown"), ("tossing", "tossed")), (("pushing", "pushed"),),
                  (("dropping", "dropped"),), (("washing", "washed"), ("cleaning", "cleaned"))]
# Actions on entities (so agent and patient can swap).
ENTITY_ACTIONS = [(("chasing", "chased"), ("following", "followed")),
                  (("watching", "watched"), ("looking at", "looked at")),
                  (("hugging", "hugged"),), (("feeding", "fed"),)]
LOCATIONS = [("in", "park"), ("in", "kitchen"), ("on", "street"), ("on", "beach"),
             ("in", "yard"), ("in", "garden")]

# The weight of each role in the relatedness score (they sum to 1).
WEIGHTS = {"agent": 0.3, "action": 0.3, "patient": 0.25, "adjective": 0.05, "location": 0.1}
SYNONYM_MATCH = 0.9  # a synonym counts almost as the same word
NEGATION_FACTOR = 0.7  # "there is no X" vs "X": same topic, opposite claim


@dataclass(frozen=True)
class Event:
    """What a sentence says. Each role is (concept index, synonym index) into its lexicon."""

    agent: tuple[int, int]
    adjective: Optional[tuple[int, int]]
    on_entities: bool  # the action takes an entity (ENTITY_ACTIONS) or an object (OBJECT_ACTIONS)
    action: tuple[int, int]
    patient: tuple[int, int]
    location: Optional[int]
    negated: bool
    voice: str  # "active" or "passive" (negated events are always "there is no ...")


def _actions(event: Event) -> list:
    return ENTITY_ACTIONS if event.on_entities else OBJECT_ACTIONS


def _patients(event: Event) -> list:
    return ENTITIES if event.on_entities else OBJECTS


def _pick(rng: random.Random, concepts: list, avoid: Optional[int] = None) -> tuple[int, int]:
    choices = [c for c in range(len(concepts)) if c != avoid]
    concept = rng.choice(choices)
    return concept, rng.randrange(len(concepts[concept]))


def random_event(rng: random.Random) -> Event:
    on_entities = rng.random() < 0.35
    agent = _pick(rng, ENTITIES)
    patients = ENTITIES if on_entities else OBJECTS
    patient = _pick(rng, patients, avoid=agent[0] if on_entities else None)
    return Event(agent=agent,
                 adjective=_pick(rng, ADJECTIVES) if rng.random() < 0.5 else None,
                 on_entities=on_entities,
                 action=_pick(rng, ENTITY_ACTIONS if on_entities else OBJECT_ACTIONS),
                 patient=patient,
                 location=rng.randrange(len(LOCATIONS)) if rng.random() < 0.6 else None,
                 negated=rng.random() < 0.15,
                 voice=rng.choice(["active", "passive"]))


def _synonym(rng: random.Random, role: tuple[int, int], concepts: list) -> tuple[int, int]:
    concept, word = role
    options = [w for w in range(len(concepts[concept])) if w != word]
    return (concept, rng.choice(options)) if options else role


def perturb(event: Event, rng: random.Random) -> Event:
    """One random change of meaning or of form."""
    kind = rng.choice(["agent", "agent synonym", "action", "action synonym", "patient",
                       "patient synonym", "adjective", "location", "negation", "voice",
                       "swap", "domain"])
    if kind == "agent":
        return replace(event, agent=_pick(rng, ENTITIES, avoid=event.agent[0]))
    if kind == "agent synonym":
        return replace(event, agent=_synonym(rng, event.agent, ENTITIES))
    if kind == "action":
        return replace(event, action=_pick(rng, _actions(event), avoid=event.action[0]))
    if kind == "action synonym":
        return replace(event, action=_synonym(rng, event.action, _actions(event)))
    if kind == "patient":
        return replace(event, patient=_pick(rng, _patients(event), avoid=event.patient[0]))
    if kind == "patient synonym":
        return replace(event, patient=_synonym(rng, event.patient, _patients(event)))
    if kind == "adjective":
        return replace(event, adjective=None if event.adjective and rng.random() < 0.5
                       else _pick(rng, ADJECTIVES))
    if kind == "location":
        return replace(event, location=None if event.location is not None and rng.random() < 0.5
                       else rng.randrange(len(LOCATIONS)))
    if kind == "negation":
        return replace(event, negated=not event.negated)
    if kind == "voice":
        return replace(event, voice="passive" if event.voice == "active" else "active")
    if kind == "swap" and event.on_entities and event.patient[0] != event.agent[0]:
        return replace(event, agent=event.patient, patient=event.agent)
    # "domain" (or a swap that is not possible): a new action and patient of the other kind.
    on_entities = not event.on_entities
    patients = ENTITIES if on_entities else OBJECTS
    return replace(event, on_entities=on_entities,
                   action=_pick(rng, ENTITY_ACTIONS if on_entities else OBJECT_ACTIONS),
                   patient=_pick(rng, patients, avoid=event.agent[0] if on_entities else None))


# --------------------------------------------------------------------------------- scores
def _match(a: Optional[tuple[int, int]], b: Optional[tuple[int, int]]) -> float:
    if a is None or b is None:
        return 1.0 if a == b else 0.0
    if a[0] != b[0]:
        return 0.0
    return 1.0 if a[1] == b[1] else SYNONYM_MATCH


def relatedness(a: Event, b: Event) -> float:
    """1 + 4 * the weighted share of roles, scaled down when one sentence negates the other.
    Voice does not matter: a passive paraphrase is as related as the same sentence."""
    same_kind = a.on_entities == b.on_entities
    shares = {
        "agent": _match(a.agent, b.agent),
        "action": _match(a.action, b.action) if same_kind else 0.0,
        "patient": _match(a.patient, b.patient) if same_kind else 0.0,
        "adjective": _match(a.adjective, b.adjective),
        "location": 1.0 if a.location == b.location else 0.0,
    }
    share = sum(WEIGHTS[role] * value for role, value in shares.items())
    if a.negated != b.negated:
        share *= NEGATION_FACTOR
    return 1.0 + 4.0 * share


# -------------------------------------------------------------------------------- parses
class _Sentence:
    """Words with named heads, resolved to 1-based heads at the end."""

    def __init__(self) -> None:
        self.words: list[tuple[str, str, str, Optional[str]]] = []  # key, word, rel, head key

    def add(self, key: str, word: str, rel: str, head: Optional[str]) -> None:
        self.words.append((key, word, rel, head))

    def noun_phrase(self, key: str, noun: str, rel: str, head: Optional[str],
                    det: str = "a", adjective: Optional[str] = None) -> None:
        first = adjective or noun
        if det == "a" and first[0] in "aeiou":
            det = "an"
        self.add(f"{key}-det", det, "det", key)
        if adjective:
            self.add(f"{key}-amod", adjective, "amod", key)
        self.add(key, noun, rel, head)

    def resolve(self) -> tuple[list[str], list[int], list[str]]:
        position = {key: i + 1 for i, (key, _, _, _) in enumerate(self.words)}
        tokens, heads, rels = [], [], []
        for _, word, rel, head in self.words:
            tokens.append(word)
            heads.append(position[head] if head else 0)
            rels.append(rel)
        tokens[0] = tokens[0][0].upper() + tokens[0][1:]
        return tokens, heads, rels


def render(event: Event, rng: random.Random) -> tuple[list[str], list[int], list[str]]:
    """Tokens, 1-based heads (0 = root) and relations of one sentence for ``event``."""
    agent = ENTITIES[event.agent[0]][event.agent[1]]
    adjective = ADJECTIVES[event.adjective[0]][event.adjective[1]] if event.adjective else None
    participle, past = _actions(event)[event.action[0]][event.action[1]]
    patient = _patients(event)[event.patient[0]][event.patient[1]]
    det_agent, det_patient = rng.choice(["a", "the"]), rng.choice(["a", "the"])
    sentence = _Sentence()

    def verb(key: str, words: str, rel: str, head: Optional[str]) -> None:
        # "looking at": the verb and a particle-like preposition attached to it.
        first, *rest = words.split()
        sentence.add(key, first, rel, head)
        for k, word in enumerate(rest):
            sentence.add(f"{key}-prt{k}", word, "prep", key)

    if event.negated:
        sentence.add("expl", "there", "expl", "be")
        sentence.add("be", "is", "root", None)
        sentence.add("agent-det", "no", "neg", "agent")
        if adjective:
            sentence.add("agent-amod", adjective, "amod", "agent")
        sentence.add("agent", agent, "nsubj", "be")
        verb("verb", participle, "vmod", "agent")
        sentence.noun_phrase("patient", patient, "dobj", "verb", det_patient)
        head = "verb"
    elif event.voice == "active":
        sentence.noun_phrase("agent", agent, "nsubj", "verb", det_agent, adjective)
        sentence.add("aux", "is", "aux", "verb")
        verb("verb", participle, "root", None)
        sentence.noun_phrase("patient", patient, "dobj", "verb", det_patient)
        head = "verb"
    else:
        sentence.noun_phrase("patient", patient, "nsubjpass", "verb", det_patient)
        sentence.add("aux", "is", "aux", "verb")
        sentence.add("auxpass", "being", "auxpass", "verb")
        verb("verb", past, "root", None)
        sentence.add("by", "by", "prep", "verb")
        sentence.noun_phrase("agent", agent, "pobj", "by", det_agent, adjective)
        head = "verb"
    if event.location is not None:
        preposition, place = LOCATIONS[event.location]
        sentence.add("loc-prep", preposition, "prep", head)
        sentence.noun_phrase("loc", place, "pobj", "loc-prep", "the")
    return sentence.resolve()


# ---------------------------------------------------------------------------------- files
def make_pair(rng: random.Random) -> tuple[Event, Event, float]:
    a = random_event(rng)
    if rng.random() < 0.1:
        b = random_event(rng)
    else:
        b = a
        for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
            b = perturb(b, rng)
        if b == a:
            b = replace(b, voice="passive" if a.voice == "active" else "active")
    noise = rng.gauss(0.0, 0.15)
    score = min(5.0, max(1.0, round(relatedness(a, b) + noise, 1)))
    return a, b, score


def write_split(directory: Path, pairs: list[tuple[list, list, float]], first_id: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    columns: dict[str, list[str]] = {name: [] for name in
                                     ("a.toks", "b.toks", "a.parents", "b.parents", "a.rels",
                                      "b.rels", "sim.txt", "id.txt")}
    for k, (left, right, score) in enumerate(pairs):
        for side, (tokens, heads, rels) in (("a", left), ("b", right)):
            columns[f"{side}.toks"].append(" ".join(tokens))
            columns[f"{side}.parents"].append(" ".join(map(str, heads)))
            columns[f"{side}.rels"].append(" ".join(rels))
        columns["sim.txt"].append(f"{score:.1f}")
        columns["id.txt"].append(str(first_id + k))
    for name, lines in columns.items():
        (directory / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def generate(seed: int, sizes: dict[str, int]) -> dict[str, list[tuple[list, list, float]]]:
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()
    splits: dict[str, list] = {}
    for split, size in sizes.items():
        pairs = []
        while len(pairs) < size:
            a, b, score = make_pair(rng)
            left, right = render(a, rng), render(b, rng)
            key = (" ".join(left[0]), " ".join(right[0]))
            if key in seen:  # no sentence pair twice, within or across splits
                continue
            seen.add(key)
            pairs.append((left, right, score))
        splits[split] = pairs
    return splits


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    parser.add_argument("--out", default="treelstm/datasets/sick_sample",
                        help="(default: %(default)s)")
    parser.add_argument("--train", type=int, default=400, help="pairs (default: %(default)s)")
    parser.add_argument("--dev", type=int, default=100, help="pairs (default: %(default)s)")
    parser.add_argument("--test", type=int, default=200, help="pairs (default: %(default)s)")
    args = parser.parse_args(argv)
    splits = generate(args.seed, {"train": args.train, "dev": args.dev, "test": args.test})
    first_id = 1
    for split, pairs in splits.items():
        write_split(Path(args.out) / split, pairs, first_id)
        first_id += len(pairs)
    print(f"wrote {', '.join(f'{len(p)} {s}' for s, p in splits.items())} pairs to {args.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
