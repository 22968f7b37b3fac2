"""The docs site's generated parts (docs/hooks/generated.py): the command
reference names every command and option of the real parser, and a page's
internal links point at pages that exist.  (`make docs` builds the whole
site with --strict; this is the quick part of that check.)"""

from __future__ import annotations

import argparse
import importlib.util
import re

from conftest import ROOT


def _hook():
    spec = importlib.util.spec_from_file_location("docs_hook", ROOT / "docs/hooks/generated.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_command_reference_names_every_command_and_option() -> None:
    hook = _hook()
    text = hook.cli_reference()
    sub = next(a for a in hook._parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert len(sub.choices) >= 10
    for name, parser in sub.choices.items():
        section = text.split(f"## `kmallocwd {name}` {{#{name}}}", 1)[1].split("\n## ", 1)[0]
        for action in parser._actions:
            if action.option_strings and "-h" not in action.option_strings:
                for opt in action.option_strings:
                    assert f"`{opt}`" in section, (name, opt)
        assert f"usage: kmallocwd {name}" in section


def test_the_marker_is_replaced_and_a_page_without_it_is_left_alone() -> None:
    hook = _hook()
    hook._cache["cli"] = "THE REFERENCE\n"
    page = "# Commands\n\n<!-- generated: cli -->\n"
    assert hook.on_page_markdown(page, None, None, None) == "# Commands\n\nTHE REFERENCE\n\n"
    assert hook.on_page_markdown("# Other\n", None, None, None) == "# Other\n"


def test_every_page_in_the_nav_exists_and_every_page_is_in_the_nav() -> None:
    nav = re.findall(r"^\s+- (?:[^:\n]+: )?(\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.M)
    docs = ROOT / "docs"
    pages = {str(p.relative_to(docs)) for p in docs.rglob("*.md")}
    assert set(nav) == pages


def _status_rows(text: str) -> list[str]:
    """The first column of a Markdown table whose header is `| status | meaning |`."""
    table = text.split("| status | meaning |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    return [row.split("|")[1].strip() for row in table.splitlines()]


def test_the_readme_is_short_and_its_links_and_exit_codes_match_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [link for link in links if "://" not in link]
    assert local, "the README links into the docs"
    for link in local:
        assert (ROOT / link).exists(), link
    # every page of the site's nav is linked from the README's list
    nav = re.findall(r"^\s+- (?:[^:\n]+: )?(\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.M)
    for page in nav:
        if not page.startswith("results/") or page == "results/index.md":
            target = "CHANGELOG.md" if page == "changelog.md" else f"docs/{page}"
            assert target in local or page == "index.md", page
    # the README's exit codes are the reference page's, in the same order
    assert _status_rows(readme) == _status_rows((ROOT / "docs" / "exit-codes.md").read_text())
