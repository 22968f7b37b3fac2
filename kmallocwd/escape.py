"""Text from an input (a protocol file's reasons and notes, a results file's
hostnames and errors, a plan's names) as it may be printed: one line, no
control character, no GitHub workflow command.  A leaf module: the library's
renderers and the CLI both use it.

- ``one_line(text)``: every character that is not printable (C0 and C1
  controls such as ESC, DEL, CR, LF; bidi overrides; line separators) shown
  escaped (``\\x1b``, ``\\n``, ``\\u202e``); a leading ``::`` (after blanks),
  with which a CI log line becomes a workflow command (``::warning file=...``),
  and ``##[`` (the old form, anywhere in a line) are defused (``\\x3a:``,
  ``#\\x23[``).
- ``github_data(text)`` / ``github_property(text)``: a workflow command's
  message and property values, escaped as GitHub documents (``%`` ``\\r``
  ``\\n``, and ``:`` ``,`` in properties), no other control character, and
  no ``##[``.
"""

from __future__ import annotations


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _defuse(text: str) -> str:
    text = text.replace("##[", "#\\x23[")
    stripped = text.lstrip(" ")
    if stripped.startswith("::"):
        text = text[: len(text) - len(stripped)] + "\\x3a" + stripped[1:]
    return text


def one_line(text: object) -> str:
    """``text`` (any value: str() of it) as one printable line, safe in a CI log."""
    return _defuse(_printable(str(text)))


def github_data(text: object) -> str:
    """A workflow command's message: % CR LF as GitHub escapes them, then no
    other control character."""
    t = str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return _printable(t).replace("##[", "#\\x23[")


def github_property(text: object) -> str:
    """A workflow command's property value (file=, title=): also : and ,."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")
