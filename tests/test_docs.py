"""The documentation against the code, so that it cannot drift from it: in README.md and every
docs/ page, each `python -m keras_ganime.X` command names a module that exists, with flags its
`--help` (its subcommand's, where it has one) lists; each `make TARGET` names a Makefile target
(or an experiment's `exp-NAME`); and each relative link leads to a file."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The module and its arguments, up to the end of the command (a pipe, `;`, `&&`, a comment).
COMMAND = re.compile(r"python -m (keras_ganime(?:\.\w+)+)((?:[ \t]+(?!\|[ \t])[^\s`;&#)]+)*)")
FLAG = re.compile(r"^(--[a-z][a-z0-9-]*)")
CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
# `make X` as a command: a code span or a code line that starts with it, or after &&
MAKE = re.compile(r"(?:^|&&)[ \t]*make ([a-z][\w-]*)", re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s]+)\)")


@functools.cache
def help_text(module: str, word: str) -> str | None:
    """`python -m MODULE [WORD] --help`: a subcommand's help where WORD is one (argparse prints
    the module's own otherwise); None where the module does not run."""
    command = [sys.executable, "-m", module, *([word] if word else []), "--help"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=False)
    return done.stdout if done.returncode == 0 else None


@functools.cache
def make_targets() -> frozenset[str]:
    text = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"(?m)^([a-z][\w-]*):", text))
    experiments = {p.stem for p in (ROOT / "keras_ganime" / "experiments").glob("*.toml")}
    return frozenset(targets | {f"exp-{name}" for name in experiments})


def command_problems(line: str) -> list[str]:
    problems = []
    for match in COMMAND.finditer(line):
        module, args = match.group(1), match.group(2).split()
        if module != module.lower():  # a placeholder: keras_ganime.NAME
            continue
        if module.startswith("keras_ganime.") and "." in module[len("keras_ganime."):] and (
                not (ROOT / (module.replace(".", "/") + ".py")).is_file()):
            problems.append(f"python -m {module}: no such module")
            continue
        word = args[0] if args and re.fullmatch(r"[a-z]+", args[0]) else ""
        shown = help_text(module, word)
        if shown is None:
            problems.append(f"python -m {module}: does not run (--help failed)")
            continue
        name = " ".join(filter(None, ("python -m", module, word)))
        for arg in args:
            flag = FLAG.match(arg.lstrip("[("))  # usage's [--flag VALUE] too
            if flag and re.search(rf"{re.escape(flag.group(1))}\b", shown) is None:
                problems.append(f"{name}: no flag {flag.group(1)}")
    return problems


def page_problems(path: Path, text: str) -> list[str]:
    """What in one page names a command, a flag, a target or a file that does not exist."""
    problems = []
    joined = re.sub(r"\\\n\s*", " ", text)  # a shell line continued with a backslash
    for line in joined.splitlines():
        problems += command_problems(line)
    for code in CODE.findall(text):
        for target in MAKE.findall(code.strip("`").removeprefix("sh\n")):
            if target not in make_targets() and target == target.lower():
                problems.append(f"make {target}: no such target")
    for link in LINK.findall(text):
        if re.match(r"[a-z]+:", link) or link.startswith("#"):
            continue
        if not (path.parent / link.partition("#")[0]).exists():
            problems.append(f"link {link}: no such file")
    return [f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {p}"
            for p in problems]


def test_every_command_flag_target_and_link_in_the_docs_exists():
    assert (ROOT / "docs").is_dir() and len(PAGES) > 5
    problems = [p for page in PAGES for p in page_problems(page, page.read_text())]
    assert problems == []


def test_the_check_finds_what_is_wrong(tmp_path):
    """A page with a wrong flag, a subcommand's wrong flag, a module that does not exist, a
    target that does not exist and a broken link: each found, and the right ones pass."""
    page = tmp_path / "page.md"
    page.write_text(
        "```sh\n"
        "python -m keras_ganime.train --config batch16 --no-such-flag 3\n"
        "python -m keras_ganime.data prepare SRC OUT.h5 --size 64 --fit pad --seed 1\n"
        "python -m keras_ganime.engines.nosuch --help\n"
        "python -m keras_ganime.generate runs/00003 --n 64 \\\n    --truncation 0.7\n"
        "make test && make no-such-target && make exp-batch16\n"
        "```\n"
        "[ok](page.md), [broken](missing.md), [web](https://example.com)\n")
    assert page_problems(page, page.read_text()) == [
        f"{page}: python -m keras_ganime.train: no flag --no-such-flag",
        f"{page}: python -m keras_ganime.data prepare: no flag --seed",
        f"{page}: python -m keras_ganime.engines.nosuch: no such module",
        f"{page}: make no-such-target: no such target",
        f"{page}: link missing.md: no such file",
    ]
