"""Validate python_reference_questions.json against this interpreter's pydoc_data.topics and print counts.

Usage: python benchmarks/rag/check_questions.py [path/to/questions.json]
Exits 1 when any question breaks a rule (the problems are printed one per line).
"""

from __future__ import annotations

import json
import pydoc_data.topics
import re
import sys
from collections import Counter
from pathlib import Path

QUESTIONS_PATH = Path(__file__).with_name("python_reference_questions.json")
REQUIRED_FIELDS = ("id", "question", "topic", "evidence", "answer")
MIN_EVIDENCE_WORDS, MAX_EVIDENCE_WORDS = 3, 12
STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i if in is it its of on or the to what when which why with "
    "my me you your this that there".split()
)


def collapse(text: str) -> str:
    """The benchmark's relevance rule compares texts with every whitespace run collapsed to one space."""
    return re.sub(r"\s+", " ", text).strip()


def raw_span(evidence: str, text: str) -> str | None:
    """The stretch of the uncollapsed text that the evidence matches, or None."""
    found = re.search(r"\s+".join(re.escape(word) for word in evidence.split()), text)
    return found.group(0) if found else None


def usable_questions(questions: list[dict], topics: dict[str, str]) -> list[dict]:
    """The questions whose evidence occurs in this interpreter's topics (the text changes between Python versions)."""
    return [q for q in questions
            if q.get("topic") in topics and collapse(q["evidence"]) in collapse(topics[q["topic"]])]


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z_]+", text.lower()) if w not in STOPWORDS and len(w) > 1}


def lexical_overlap(question: str, evidence: str) -> float:
    """Share of the evidence's content words that the question repeats (0 = paraphrase, 1 = same words)."""
    words = content_words(evidence)
    return len(words & content_words(question)) / len(words) if words else 0.0


def check(questions: list[dict], topics: dict[str, str]) -> list[str]:
    problems = []
    collapsed = {key: collapse(text) for key, text in topics.items()}
    ids = [q.get("id") for q in questions]
    for dup, n in Counter(ids).items():
        if n > 1:
            problems.append(f"id {dup}: used {n} times")
    for q in questions:
        where = f"id {q.get('id')}"
        missing = [f for f in REQUIRED_FIELDS if not q.get(f)]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
            continue
        topic, evidence = q["topic"], collapse(q["evidence"])
        if topic not in topics:
            problems.append(f"{where}: unknown topic {topic!r}")
            continue
        hits = collapsed[topic].count(evidence)
        if hits == 0:
            problems.append(f"{where}: evidence not found in topic {topic!r}: {evidence!r}")
        elif hits > 1:
            problems.append(f"{where}: evidence occurs {hits} times in topic {topic!r}, make it more specific")
        span = raw_span(evidence, topics[topic]) if hits else None
        if span and re.search(r"\n[ \t]*\n", span):
            problems.append(f"{where}: evidence crosses a paragraph break, a chunker may split it")
        words = len(evidence.split())
        if not MIN_EVIDENCE_WORDS <= words <= MAX_EVIDENCE_WORDS:
            problems.append(f"{where}: evidence has {words} words, want {MIN_EVIDENCE_WORDS}-{MAX_EVIDENCE_WORDS}")
        if evidence.lower() in collapse(q["question"]).lower():
            problems.append(f"{where}: the question copies its evidence")
        if q.get("faithfulness"):
            keywords = q.get("answer_keywords") or []
            if not 1 <= len(keywords) <= 3:
                problems.append(f"{where}: faithfulness question needs 1-3 answer_keywords")
            for kw in keywords:
                if kw != kw.lower() or kw.lower() not in evidence.lower():
                    problems.append(f"{where}: answer keyword {kw!r} must be lowercase and occur in the evidence")
        elif "answer_keywords" in q:
            problems.append(f"{where}: answer_keywords without faithfulness")
    return problems


def evidence_spread(questions: list[dict], topics: dict[str, str]) -> Counter:
    """How many topics hold each evidence string (several topics repeat others, e.g. 'compound' holds 'try')."""
    collapsed = [collapse(text) for text in topics.values()]
    return Counter(sum(collapse(q["evidence"]) in text for text in collapsed) for q in questions)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else QUESTIONS_PATH
    questions = json.loads(path.read_text(encoding="utf-8"))
    topics = pydoc_data.topics.topics
    problems = check(questions, topics)
    for problem in problems:
        print("FAIL", problem)

    per_topic = Counter(q["topic"] for q in questions)
    overlaps = [lexical_overlap(q["question"], q["evidence"]) for q in questions]
    print(f"python {sys.version.split()[0]}: {len(topics)} topics in pydoc_data.topics")
    print(f"questions: {len(questions)}")
    print(f"topics covered: {len(per_topic)} (most questions on one topic: {max(per_topic.values())})")
    print(f"faithfulness questions: {sum(bool(q.get('faithfulness')) for q in questions)}")
    spread = evidence_spread(questions, topics)
    print("evidence found in N topics: " + ", ".join(f"{n}: {c}" for n, c in sorted(spread.items())))
    low = sum(o < 0.34 for o in overlaps)
    high = sum(o >= 0.67 for o in overlaps)
    print(f"question/evidence word overlap: low {low}, medium {len(overlaps) - low - high}, high {high}")
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
