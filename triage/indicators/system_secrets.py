"""System-impact detectors for secret stores: credentials, crypto wallets, directory sweeps."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from triage.indicators.base import FileContext, detector
from triage.indicators.system_common import (
    FileFacts,
    defang,
    facts,
    is_network,
    scaled,
    sends,
)
from triage.model import Phase, Signal, Statement

_CRED_KINDS: tuple[tuple[str, float, re.Pattern[str]], ...] = (
    ("browser password/cookie store", 0.85, re.compile(
        r"(?i)^(Login Data|Web Data|Local State|key4\.db|logins\.json|cookies\.sqlite|"
        r"signons\.sqlite)$|[\\/](Login Data|Web Data|Local State|key4\.db|logins\.json|"
        r"cookies\.sqlite)\b|(?-i:[\\/](Network[\\/])?Cookies\b|^Network[\\/]Cookies$)|"
        r"\bFROM\s+(logins|cookies|credit_cards)\b|password_value|\bos_crypt\b|"
        r"^encrypted_key$")),
    ("Discord token store", 0.85, re.compile(
        r"(?i)discord(canary|ptb)?[\\/]+Local Storage|Local Storage[\\/]+leveldb|"
        r"\[\\w-\]\{2[3-6]\}|mfa\\\.\[|dQw4w9WgXcQ|discord(app)?\.com/api/v\d+/users/@me")),
    ("application session store", 0.8, re.compile(
        r"(?i)Telegram Desktop[\\/]+tdata|FileZilla[\\/]+(recentservers|sitemanager)\.xml|"
        r"Steam[\\/]+config[\\/]+loginusers|launcher_accounts\.json|\.ROBLOSECURITY|"
        r"_\|WARNING:-DO-NOT-SHARE-THIS|^CryptUnprotectData$")),
    ("cloud/Kubernetes workload credential", 0.5, re.compile(
        r"(?i)/var/run/secrets/kubernetes\.io|/run/secrets/kubernetes\.io|"
        r"serviceaccount/token\b|/proc/self/environ\b|/proc/\d+/environ\b|"
        r"169\.254\.169\.254/[\w/.-]*(?:security-credentials|identity|token)|"
        r"metadata\.google\.internal/computeMetadata/[\w/.-]*(?:token|identity)|"
        r"100\.100\.100\.200/[\w/.-]*ram/security-credentials|"
        r"169\.254\.170\.2/v2/credentials")),
    ("cloud/developer credential file", 0.5, re.compile(
        r"(?i)\.aws[\\/]+credentials|\.azure[\\/]+(accessTokens|msal_token)|"
        r"gcloud[\\/]+(credentials|application_default_credentials)|\.kube[\\/]+config|"
        r"\.docker[\\/]+config\.json|\.pypirc\b|\.npmrc\b|\.git-credentials\b")),
    ("SSH private key", 0.35, re.compile(r"\.ssh[\\/]+id_(rsa|dsa|ecdsa|ed25519)\b")),
)
_WORKLOAD = "cloud/Kubernetes workload credential"
_WALLET_IDS = frozenset("""
nkbihfbeogaeaoehlefnkodbefgpgknn ejbalbakoplchlghecdalmeeeajnimhm fhbohimaelbohpjbbldcngcnapndodjp
hnfanknocfeofbddgcijnmhnfnkdnaad ibnejdfjmmkpcnlpebklmnkoeoihofec bfnaelmomeimhlpmgjnjophhpkkoljpa
aholpfdialjgjfhomihkjbmgjidlcdno fnjhmkhhmkbjkkabndcnnogagogbneec egjidjbpglichdcondbcbdnbeeppgdph
nphplpgoakhhjchkkhmiggakijnkhfnd ffnbelfdoeiohenkjibnmadjiehjhajb jbdaocneiiinmjbjlgalhcelgbejmnid
afbcbjpbpfadlkmhmclhkeeodmamcflc hpglfhgfnhbgpjdenjgmdgoeiappafln blnieiiffboillknjnepogjhkgnoapac
cjelfplplebdjjenllpjcblmjkfcffne fihkakfobkmkjojpchpfgcmhfjnmnfpi kncchdigobghenbbaddojjnnaogfppfj
""".split())
_WALLET_PATH = re.compile(
    r"(?i)wallet\.dat\b|exodus\.wallet|Exodus[\\/]|Electrum[\\/]+wallets|Ethereum[\\/]+keystore|"
    r"atomic[\\/]+Local Storage|Coinomi[\\/]|Guarda[\\/]|Armory[\\/]|com\.liberty\.jaxx|"
    r"Zcash[\\/]|Bytecoin[\\/]|Binance[\\/]|Local Extension Settings[\\/]+[a-p]{32}")
_WALLET_NAMES = frozenset({"exodus", "electrum", "atomic", "coinomi", "guarda", "armory",
                           "jaxx", "zcash", "bytecoin", "metamask", "ethereum", "binance",
                           "phantom", "trustwallet", "ronin", "tronlink", "wasabi"})
_READERS = ("open", "io.open", "shutil.copy", "shutil.copy2", "shutil.copyfile",
            "shutil.copytree", "sqlite3.connect", "os.listdir", "os.walk", "os.scandir",
            "glob.glob", "os.path.exists", "os.path.isfile", "os.path.isdir", "zipfile.ZipFile")


def _readers(ff: FileFacts, st: Statement) -> bool:
    return any(c.name in _READERS or c.name.endswith((".read_text", ".read_bytes", "copytree"))
               for c in ff.calls(st))


def _is_docstring(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


@detector("credential_stores", "code_read_credentials")
def credential_stores(ctx: FileContext) -> Iterator[Signal]:
    """Statements that locate or read other programs' secret stores."""
    ff = facts(ctx)
    hits: list[tuple[Statement, str, float, str]] = []
    for st, node in ctx.statements():
        if _is_docstring(node):
            continue
        texts = ff.strings(st)
        if _readers(ff, st):
            texts = ff.strings_deep(st)
        if any(c.name.endswith("CryptUnprotectData") for c in ff.calls(st)):
            texts = [*texts, "CryptUnprotectData"]
        if "Cookies" in texts and any(c.name.endswith(("path.join", "Path", "joinpath"))
                                      for c in ff.calls(st)):
            texts = [*texts, "/Cookies"]  # os.path.join(profile, "Network", "Cookies")
        for kind, base, pattern in _CRED_KINDS:
            m = next((m for t in texts if (m := pattern.search(t))), None)
            if m:
                hits.append((st, kind, base, m.group(0)))
                break
    kinds = {h[1] for h in hits}
    strong = any(h[2] >= 0.8 for h in hits)
    for st, kind, base, what in hits:
        conf = base
        if len(kinds) > 1 or (strong and base < 0.8):
            conf = max(base, 0.8)
        if kind == _WORKLOAD:
            # cloud SDKs name these paths and endpoints (workload identity); reading one at
            # install/import time in a file that sends data out is what a stealer does
            reads = _readers(ff, st) or any(is_network(c.name) for c in ff.calls(st))
            if reads and st.phase is not Phase.CALL and sends(ff, st):
                conf = max(conf, 0.85)
            elif not reads and len(kinds) == 1:
                conf = 0.35
        yield ctx.signal("code_read_credentials", st,
                         f"locates a {kind} (`{defang(what, 60)}`)",
                         confidence=scaled(conf, st, ctx.source.path),
                         detector="credential_stores")


@detector("crypto_wallets", "code_read_crypto_wallet")
def crypto_wallets(ctx: FileContext) -> Iterator[Signal]:
    """Statements that locate cryptocurrency wallet files or wallet extensions."""
    ff = facts(ctx)
    names_in_file = {s.lower() for v in ff.strings_by_stmt.values() for s in v
                     if s.lower() in _WALLET_NAMES}
    for st, node in ctx.statements():
        if _is_docstring(node):
            continue
        texts = ff.strings_deep(st) if _readers(ff, st) else ff.strings(st)
        what = None
        for t in texts:
            ids = [w for w in re.findall(r"\b[a-p]{32}\b", t) if w in _WALLET_IDS]
            if ids:
                what = f"wallet extension id {ids[0]}"
                break
            m = _WALLET_PATH.search(t)
            if m:
                what = f"wallet path `{m.group(0)}`"
                break
            if len(names_in_file) >= 3 and t.lower() in _WALLET_NAMES:
                what = f"wallet application `{t}` in a list of wallets"
                break
        if what:
            yield ctx.signal("code_read_crypto_wallet", st, f"locates {defang(what, 80)}",
                             confidence=scaled(0.85, st, ctx.source.path),
                             detector="crypto_wallets")


_LISTERS = ("os.walk", "os.listdir", "os.scandir", "glob.glob", "glob.iglob")
_USER_DIR = re.compile(
    r"(?i)\b(desktop|documents|downloads|pictures|onedrive|appdata|localappdata|userprofile|"
    r"roaming|user data|local storage|leveldb|telegram|wallets?|exodus|steam)\b|^~[\\/]?$|"
    r"^HOME$|^/home/?$|^/(root|Users)/?$|^[A-Z]:\\{0,2}$|^[A-Z]:/$")


def _home_arg(ctx: FileContext, call: ast.Call) -> bool:
    """True when the listed directory is the home directory itself."""
    target = call.args[0] if call.args else (
        call.func.value if isinstance(call.func, ast.Attribute) else None)
    if not isinstance(target, ast.Call):
        return False
    name = ctx.resolver.qualname(target.func) or ""
    return name.endswith("Path.home") or name.endswith("expanduser") and bool(
        target.args) and ctx.resolver.fold(target.args[0]) == "~"

_EXT_FILTER = re.compile(r"(?i)^\*?\.(txt|docx?|xlsx?|pdf|jpe?g|png|wallet|key|kdbx|sql|"
                         r"sqlite|db|ldb|log|pem|ppk|ovpn|rdp|dat)$")


@detector("directory_sweep", "code_enumerate_directory")
def directory_sweep(ctx: FileContext) -> Iterator[Signal]:
    """Listing or walking the user's directories (home, Desktop, drives, app data)."""
    ff = facts(ctx)
    ext_scopes: dict[str, int] = {}
    for st_id, values in ff.strings_by_stmt.items():
        scope = ctx.index.get(st_id).scope
        ext_scopes[scope] = ext_scopes.get(scope, 0) + sum(
            1 for v in values if _EXT_FILTER.match(v))
    for st, _node in ctx.statements():
        lister = next((c for c in ff.calls(st) if c.name in _LISTERS
                       or c.name.endswith((".rglob", ".iterdir"))), None)
        if lister is None:
            continue
        texts = ff.strings_deep(st)
        user = _home_arg(ctx, lister.node)
        m = next((m for t in texts if (m := _USER_DIR.search(t))), None)
        if not (user or m):
            continue
        where = f"`{m.group(0)}`" if m else "the user's home"
        conf = 0.75 + (0.1 if ext_scopes.get(st.scope, 0) >= 2 else 0.0)
        yield ctx.signal("code_enumerate_directory", st,
                         f"lists {defang(where, 60)} with {lister.name}",
                         confidence=scaled(conf, st, ctx.source.path),
                         detector="directory_sweep")
