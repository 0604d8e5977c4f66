"""README.md and docs/*.md: every relative link and image points at a file that exists, every `#anchor` at a heading
of its page (as GitHub makes anchors), and every page is reachable from the front page."""

import re
from pathlib import Path

import pytest

from ecg_utils.evaluate.report import page_paths
from ecg_utils.paths import PROJ_ROOT

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")


def _prose(text: str) -> list[str]:
    """The page's lines outside fenced code blocks (where `#` starts a shell comment, not a heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (not `-` or `_`), spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(path.read_text()):
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            a = anchor(m.group(1))
            out.add(a if a not in seen else f"{a}-{seen[a]}")
            seen[a] = seen.get(a, 0) + 1
    return out


def links(path: Path) -> list[str]:
    return [target for line in _prose(path.read_text()) for target in LINK.findall(line)]


def test_anchor_follows_github():
    assert anchor("Ablation, on DS1's cross-validation folds") == "ablation-on-ds1s-cross-validation-folds"
    assert anchor("Classify: `predict` and the app") == "classify-predict-and-the-app"
    assert anchor("Real time and noise") == "real-time-and-noise"


@pytest.mark.parametrize("page", page_paths(), ids=lambda p: str(p.relative_to(PROJ_ROOT)))
def test_every_link_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, frag = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            broken.append(f"{target} (no file {dest.relative_to(PROJ_ROOT) if dest.is_relative_to(PROJ_ROOT) else dest})")
        elif frag and dest.suffix == ".md" and frag not in anchors(dest):
            broken.append(f"{target} (no heading #{frag} in {dest.name})")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_every_page_is_reachable_from_the_front_page():
    pages = {p.resolve() for p in page_paths()}
    front = (PROJ_ROOT / "README.md").resolve()
    seen, todo = {front}, [front]
    while todo:
        page = todo.pop()
        for target in links(page):
            file = target.partition("#")[0]
            if file.endswith(".md") and not re.match(r"[a-z]+:", file):
                dest = (page.parent / file).resolve()
                if dest in pages and dest not in seen:
                    seen.add(dest)
                    todo.append(dest)
    assert pages == seen, sorted(p.name for p in pages - seen)


def test_front_page_is_short():
    """The front page leads to the docs pages instead of holding everything (about 150 lines)."""
    assert len((PROJ_ROOT / "README.md").read_text().splitlines()) <= 175


def test_new_model_example_runs(mitdb_dir, monkeypatch, tmp_path):
    """docs/new-model.md's worked example, as written: a registered model trains on fold 0, exports and streams."""
    from ecg_utils.model.architectures import MODELS

    text = (PROJ_ROOT / "docs" / "new-model.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1
    monkeypatch.setenv("MITDB_DIR", str(mitdb_dir))
    monkeypatch.chdir(tmp_path)  # its runs/ folder lands here
    monkeypatch.setitem(MODELS, "beat_attention", None)  # the example registers its own; removed afterwards
    scope: dict = {"__name__": "example"}
    exec(compile(blocks[0], "docs/new-model.md", "exec"), scope)  # noqa: S102 - the page is ours, and the test
    beats = scope["beats"]
    assert 60 <= len(beats) <= 90  # record 101: about 75 beats a minute
    assert (tmp_path / "runs" / "example_beat_attention" / "model.onnx").is_file()
    assert scope["result"].n_params == sum(p.numel() for p in scope["BeatAttention"]().parameters())
