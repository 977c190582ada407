"""Text heuristics for package metadata: random-looking strings, mail domains, placeholders.

Pure functions. "Random-looking" combines how un-English a string's letter pairs are, how
often its letter case flips (``eXdxOKXENFRgFMj``), long consonant runs (``knbpjzsb``), and
digits mixed into letters; real names and words score low.
"""

from __future__ import annotations

import re

#: Letter pairs that cover 95% of pairs in English package summaries (PyPI top 15,000).
COMMON_BIGRAMS = frozenset(
    "ab ac ad ag ai ak al am an ap ar as at au ay az ba be bi bl bo br bs bu ca ce ch ci ck cl "
    "co cr cs ct cu da de di dj dk do dr ds du ea eb ec ed ee ef eg el em en ep er es et ev ew "
    "ex fa fe ff fi fl fo fr ft fu ge gh gi gl go gr gs gu ha he hi ho ht ia ib ic id ie if ig "
    "il im in io ip ir is it iv iz ja je ka ke ki ks la ld le li ll lo ls lt lu ly ma me mi ml "
    "mm mo mp ms mu my na nc nd ne nf ng ni nn no ns nt nv ob oc od of og ol om on oo op or os "
    "ot ou ov ow pa pe ph pi pl po pp pr pt pu py qu ra rc rd re rf ri rk rm rn ro rs rt ru rv "
    "ry sa sc sd se sh si so sp ss st su sy ta te th ti to tp tr ts tt tu tw ty ua ub uc ud ue "
    "ug ui ul um un up ur us ut va ve vi wa we wi wo wr ws xt yn yo yp ys yt".split()
)
#: Throwaway inbox services.
DISPOSABLE_DOMAINS = frozenset({
    "yopmail.com", "yopmail.fr", "mailinator.com", "guerrillamail.com", "guerrillamail.net",
    "sharklasers.com", "grr.la", "10minutemail.com", "10minutemail.net", "temp-mail.org",
    "tempmail.com", "tempmail.net", "tempmail.dev", "temp-mail.io", "throwawaymail.com",
    "trashmail.com", "trashmail.de", "getnada.com", "nada.email", "maildrop.cc",
    "dispostable.com", "mailnesia.com", "emailondeck.com", "mohmal.com", "fakeinbox.com",
    "mintemail.com", "mail.tm", "tempr.email", "inboxkitten.com", "spamgourmet.com",
    "mytemp.email", "tmpmail.org", "tmpmail.net", "burnermail.io", "mailpoof.com",
    "emailfake.com", "fakemail.net", "moakt.com", "tempinbox.com", "mvrht.net", "harakirimail.com",
    "33mail.com", "anonaddy.me", "spam4.me", "byom.de", "discard.email", "cs.email",
    "1secmail.com", "1secmail.org", "1secmail.net", "esiix.com", "wwjmp.com", "xojxe.com",
    "yoggm.com", "appxapi.com", "hldrive.com", "valanides.com", "noemail.net",
})
#: Privacy-first providers: honest people use them, but so do most anonymous uploaders.
ANONYMOUS_DOMAINS = frozenset({
    "proton.me", "protonmail.com", "protonmail.ch", "pm.me", "tutanota.com", "tutanota.de",
    "tuta.io", "tutamail.com", "tuta.com", "riseup.net", "cock.li", "airmail.cc", "firemail.cc",
    "onionmail.org", "dnmx.org", "disroot.org", "secmail.pro", "keemail.me", "atomicmail.io",
    "mail2tor.com", "torbox3uiot6wchz.onion", "elude.in", "cyberfear.com", "countermail.com",
})
PLACEHOLDER_NAMES = frozenset({
    "your name", "yourname", "name", "author", "test", "tester", "admin", "user", "unknown",
    "none", "null", "anonymous", "anon", "xxx", "abc", "asdf", "me", "foo", "bar", "example",
    "hacker", "root", "noname", "no name", "todo", "author name", "first last",
})
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_PLACEHOLDER_MAIL = re.compile(
    r"(?i)^(?:your[._-]?e?mail|e?mail|me|author|test|user|name|a|ok|foo|example)@"
    r"|@(?:example|test|domain|email|mail)\.(?:com|org|net)$")


def emails(value: str) -> list[str]:
    """Email addresses in a metadata value (``Name <a@b.c>, d@e.f``)."""
    return _EMAIL.findall(value)


def _rare(word: str) -> float:
    low = word.lower()
    pairs = [low[i:i + 2] for i in range(len(low) - 1)]
    return sum(p not in COMMON_BIGRAMS for p in pairs) / len(pairs) if pairs else 0.0


def randomness(token: str) -> float:
    """0..1: how much a single name/word looks like random characters.

    Mixed-case tokens are split into case humps (``CamelCase`` -> ``Camel``, ``Case``);
    random strings make many one- or two-letter humps (``eXdxOKXENFRgFMj``). Single-case
    tokens need stronger evidence (a run of five consonants, almost no vowels, or nearly
    all letter pairs foreign to English) because real names from many languages have rare
    letter pairs. Tokens shorter than five letters score 0 (too little evidence).
    """
    letters = re.sub(r"[^A-Za-z]", "", token)
    if len(letters) < 5:
        return 0.0
    low = letters.lower()
    run = max((len(m) for m in re.findall(r"[bcdfghjklmnpqrstvwxz]+", low)), default=0)
    vowels = sum(c in "aeiouy" for c in low) / len(low)
    humps = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+", letters)
    if len(humps) >= 3 or (len(humps) == 2 and len(letters) <= 6):
        short = sum(len(h) * (1.0 if len(h) == 1 else 0.6) for h in humps if len(h) <= 2)
        rare = sum(_rare(h) * len(h) for h in humps if len(h) >= 3)
        score = (short + 0.6 * rare) / len(letters)
        upper = sum(c.isupper() for c in letters) / len(letters)
        if len(letters) >= 12 and 0.3 <= upper <= 0.7:
            score += 0.3  # long strings about half upper case: keyboard mash, not CamelCase
    else:
        rare = _rare(low)
        score = rare if (len(low) >= 10 and rare >= 0.75) else 0.5 * rare
    if _rare(low) >= 0.5:  # German "nnschm" is a long run too, but of common pairs
        score += 0.5 if run >= 6 else 0.25 if run == 5 else 0.0
        score += 0.4 if vowels == 0 else 0.2 if vowels < 0.2 and len(low) >= 6 else 0.0
    return round(min(1.0, score), 2)


def is_random(token: str, threshold: float = 0.5) -> bool:
    """True when ``token`` scores at or above ``threshold`` on :func:`randomness`."""
    return randomness(token) >= threshold


def gibberish_ratio(text: str) -> float:
    """Share of the letters of ``text`` that sit in random-looking words of 8+ letters."""
    words = re.findall(r"[A-Za-z]+", text)
    total = sum(len(w) for w in words)
    if total < 20:
        return 0.0
    bad = sum(len(w) for w in words if len(w) >= 8 and is_random(w))
    return bad / total


def mail_problem(address: str) -> tuple[str, float] | None:
    """(reason, base confidence) when an email address looks throwaway or fake."""
    local, _, domain = address.lower().rpartition("@")
    raw_local = address.rpartition("@")[0]
    if domain in DISPOSABLE_DOMAINS:
        return f"uses the disposable mail domain {domain}", 0.7
    if is_random(raw_local.split("+")[0]):
        return f"has a random-looking local part `{raw_local}`", 0.6
    if domain in ANONYMOUS_DOMAINS:
        return f"uses the anonymous mail provider {domain}", 0.45
    if _PLACEHOLDER_MAIL.search(address) or local == domain.split(".")[0] == "ok":
        return "is a placeholder address", 0.25
    return None
