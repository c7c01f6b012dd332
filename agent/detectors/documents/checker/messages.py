"""Every word ``courtguard-agent scan`` (and ``scan --fix``) prints for a person, catalogued.

Each is marked ``N_`` and stays its English msgid here; the report translates it
as it prints (``_(messages.VERDICT["publishable"])``), so the clerk reads the
locale of the moment. The Chinese of the verdict and action words is the
wording of ``scanner.VERDICT_LABELS`` and ``ACTION_LABELS``, which stay Chinese
whatever the locale because event summaries and the console share them
(``tests/test_i18n.py`` keeps the two in step). What a report shows from the
policy (a rule's reason and legal basis) and an unreadable file's reason (the
same words the ``document.unreadable`` event carries) are printed as they are.
"""

from __future__ import annotations

from typing import Final

from agent.messages import N_

VERDICT: Final = {
    "publishable": N_("publishable"),
    "needs_redaction": N_("publishable after redaction"),
    "do_not_publish": N_("not to be published"),
    "needs_review": N_("needs a person's review"),
}
ACTION: Final = {
    "block": N_("withhold"),
    "redact": N_("delete"),
    "pseudonymize": N_("pseudonymise"),
    "review": N_("person to review"),
}
#: A file that could not be checked, where a verdict would stand.
UNCHECKED: Final = N_("cannot be checked")

#: Parts of a document as a clerk knows them.
PART: Final = {
    "body": N_("body"),
    "footnotes": N_("footnotes"),
    "endnotes": N_("endnotes"),
    "comments": N_("comments"),
    "deleted": N_("text deleted in tracked changes"),
    "properties": N_("document properties"),
    "filename": N_("file name"),
}
PAGE: Final = N_("page {number}")
HEADER: Final = N_("header {number}")
FOOTER: Final = N_("footer {number}")
DELETED_IN: Final = N_("{part}, text deleted in tracked changes")
AT_LINE: Final = N_("{part} line {line} column {column}")
IN_PARAGRAPH: Final = N_(" (paragraph {paragraph})")

#: Why a finding has no replacement (``scan``) or was left as it stands (``--fix``).
UNCHANGED: Final = {
    "block": N_("not to be published: the document as a whole must be dealt with"),
    "review": N_("for a person to decide"),
    "filename": N_("the file name carries personal data: give the output another name"),
    "overlap": N_("overlaps another change: the first one was applied"),
}
#: The same in every language: the text as it stands, then what replaces it.
CHANGE: Final = "“{original}” → “{replacement}”"
NO_CHANGE: Final = N_("“{original}” ({reason})")

# One document.
DOCUMENT: Final = N_("document: {path}")
CANNOT_CHECK: Final = N_("  cannot be checked: {error}")
VERDICT_LINE: Final = N_("  verdict: {verdict} (rule set {profile})")
GROUP: Final = N_("  [{action}] {detail} ({rule_id})")
BASIS: Final = N_("    basis: {basis}")
SUMMARY_ERROR: Final = N_("summary: cannot be checked ({error})")
SUMMARY_CLEAN: Final = N_("summary: {verdict}, nothing found.")
SUMMARY: Final = N_("summary: {verdict}; {count} found ({counts}) under {rules} rule(s).")
ACTION_COUNT: Final = N_("{action} {count}")
LIST_SEPARATOR: Final = N_(", ")

# Several documents.
CHECKED: Final = N_("documents checked: {count} ({counts})")
VERDICT_COUNT: Final = N_("{verdict} {count}")
BY_RULE: Final = N_("by rule:")
RULE_COUNT: Final = N_("  {rule_id}: {count}")
WITHDRAW: Final = N_("not to be published (withdraw any already published):")
PROGRESS: Final = N_("checked {done}/{total}")
NOT_FOUND: Final = N_("no such file or directory")

# --fix.
FIX_USAGE: Final = N_("scan --fix takes exactly one file and -o OUT")
FIX_NOT_A_FILE: Final = N_("{path} is not a file")
FIX_SAME_FILE: Final = N_("-o must name a new file; the original is never modified")
FIX_SUFFIX: Final = N_("-o must keep the extension {suffix}")
FIX_UNSUPPORTED: Final = N_("--fix handles {supported}, not {suffix}")
FIX_FAILED: Final = N_("cannot correct {path}: {reason}")
FIX_ORIGINAL: Final = N_("original: {path} ({verdict}, left unchanged)")
FIX_COPY: Final = N_("corrected copy: {path}, {count} change(s):")
FIX_APPLIED: Final = N_("  [{action}] {where}  {change} ({rule_id})")
FIX_NOT_APPLIED: Final = N_(
    "  [{action}, not changed: {reason}] {where}  {change} {detail} ({rule_id})")
FIX_RECHECKED: Final = N_("the corrected copy checked again: {verdict}")
FIX_REMAINING: Final = N_("  [{action}] {where}  “{excerpt}” {detail} ({rule_id})")

# The policy the report is made with.
NO_POLICY_DIR: Final = N_(
    "policy directory {path} does not exist: name one with --policy-dir, or set policy_dir "
    "in agent.toml")
NO_POLICY_ANYWHERE: Final = N_(
    "policy directory {path} does not exist and the installed package carries no policies: "
    "name one with --policy-dir")
POLICY_UNREADABLE: Final = N_("{path} cannot be read ({reason})")
POLICY_TOO_LARGE: Final = N_("{path} is larger than {limit} bytes: split it")
POLICY_NOT_YAML: Final = N_("{path} is not valid YAML: {reason}")
POLICY_INVALID: Final = N_("{path}: the documents policy is invalid:\n{problems}")
POLICY_TOP_LEVEL: Final = N_("(top level)")
NO_DOCUMENTS_POLICY: Final = N_(
    "policy directory {path} holds no documents policy (a file with kind: documents)")
