"""What a user reads of a file, what a browser is told, and the signed links."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from rasa_rpa.files import (
    FileLinks,
    LinkRefused,
    clean_name,
    clean_title,
    content_disposition,
    is_active,
    media_type,
    served_type,
    size_words,
    type_allowed,
)
from rasa_rpa.security import JobKeys

KEYS = JobKeys("a-master-key-for-links-0123456789")


@pytest.mark.parametrize(
    ("size", "words"),
    [
        (1, "1 byte"),
        (999, "999 bytes"),
        (1024, "1 KB"),
        (5139, "6 KB"),  # rounded up: never less than it is
        (1024 * 1024, "1 MB"),
        (int(1.5 * 1024 * 1024), "1.5 MB"),
        (40 * 1024 * 1024, "40 MB"),
        (3 * 1024**3, "3 GB"),
    ],
)
def test_sizes_read_at_a_glance(size, words):
    assert size_words(size) == words


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("orders-ACME.xlsx", "orders-ACME.xlsx"),
        ("/srv/runs/123/orders.xlsx", "orders.xlsx"),
        ("C:\\robots\\out\\Übersicht.xlsx", "Übersicht.xlsx"),
        ("report](javascript:x).csv", "report--javascript-x-.csv"),
        ("a\x00b\u202e.txt", "a b .txt"),
        ("  ..hidden.csv ", "hidden.csv"),
        ("x" * 300 + ".xlsx", "x" * 115 + ".xlsx"),
    ],
)
def test_names_lose_folders_and_what_would_break_a_link(given, kept):
    assert clean_name(given) == kept


@pytest.mark.parametrize("given", ["", "   ", "../..", "/srv/", "\x00"])
def test_a_name_with_nothing_left_is_refused(given):
    with pytest.raises(ValueError):
        clean_name(given)


def test_titles_are_plain_words():
    assert clean_title("order  report\n") == "order report"
    assert clean_title("[evil](https://x)") == "evil https //x"
    assert clean_title(None) == "file"
    assert len(clean_title("t" * 500)) == 80


def test_media_types_and_the_allow_list():
    assert media_type("Text/CSV; charset=utf-8") == "text/csv"
    assert media_type("nonsense") == media_type(None) == ""
    allowed = ("text/csv", "image/*")
    assert type_allowed("text/csv", allowed)
    assert type_allowed("image/png", allowed)
    assert not type_allowed("text/html", allowed)
    assert not type_allowed("", ("*/*",))


@pytest.mark.parametrize(
    "kind",
    [
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "application/javascript",
        "text/javascript",
        "multipart/related",
    ],
)
def test_active_content_is_only_ever_an_octet_stream(kind):
    assert is_active(kind)
    assert served_type(kind) == "application/octet-stream"


@pytest.mark.parametrize(
    "kind",
    [
        "text/csv",
        "text/plain",
        "application/pdf",
        "image/png",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ],
)
def test_documents_keep_their_type(kind):
    assert served_type(kind) == kind


def test_the_download_name_suits_every_browser():
    assert content_disposition("Übersicht 2024.xlsx") == (
        "attachment; filename=\"_bersicht 2024.xlsx\"; "
        "filename*=UTF-8''%C3%9Cbersicht%202024.xlsx"
    )


def parts(link: str) -> tuple[str, str, str]:
    url = urlsplit(link)
    query = dict(parse_qsl(url.query))
    return url.path.rsplit("/", 1)[1], query["expires"], query["signature"]


def test_a_link_opens_its_file_until_it_expires():
    links = FileLinks(KEYS, "https://bot.example/", ttl=3600)
    link = links.url("f1", now=1000)
    assert link.startswith("https://bot.example/rpa/files/f1?expires=4600&signature=")
    file_id, expires, signature = parts(link)
    links.check(file_id, expires, signature, now=4600)
    with pytest.raises(LinkRefused) as refused:
        links.check(file_id, expires, signature, now=4601)
    assert refused.value.reason == "expired"


@pytest.mark.parametrize(
    "change",
    [
        lambda f, e, s: ("f2", e, s),  # another file
        lambda f, e, s: (f, str(int(e) + 1), s),  # a longer life
        lambda f, e, s: (f, e, s[:-1] + ("A" if s[-1] != "A" else "B")),
        lambda f, e, s: (f, e, ""),
        lambda f, e, s: (f, None, s),
        lambda f, e, s: (f, "-5", s),
        lambda f, e, s: (f, e, s + "\udcff"),  # undecodable bytes in the query
    ],
)
def test_a_changed_link_is_tampered_even_when_expired(change):
    links = FileLinks(KEYS, "https://bot.example", ttl=60)
    file_id, expires, signature = change(*parts(links.url("f1", now=1000)))
    with pytest.raises(LinkRefused) as refused:
        links.check(file_id, expires, signature, now=10**9)
    assert refused.value.reason == "tampered"


def test_links_of_another_master_key_do_not_open():
    theirs = FileLinks(JobKeys("somebody-elses-master-key-012345"), "https://x", 60)
    ours = FileLinks(KEYS, "https://x", 60)
    with pytest.raises(LinkRefused):
        ours.check(*parts(theirs.url("f1", now=0)), now=1)
