"""The stack's settings: read once from stack config, validated before any resource exists.

`validate(values, secret_keys)` is a pure function over a plain mapping of full config keys
(`freescout:hostname`, `aws:region`, ...) to values, so `scripts/plan.py` and the tests call it
without the Pulumi runtime. `from_mapping` turns a valid mapping into the frozen `Settings`,
or raises `InvalidConfig` naming every problem with the command that fixes it.
`from_pulumi_config()` is what the program itself calls.

`read_stack_file` reads Pulumi.<stack>.yaml for the tools that run without the engine
(scripts/plan.py, scripts/rebuild.py, scripts/restore.py) and hands `validate` the values in
the form the engine would pass them to the program, so all of them judge the config alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from freescout import modules as catalog
from operations.errors import UsageError

NS = "freescout"
PLACEHOLDER = "REPLACE_WITH_"

# A host name of at least two labels: letters, digits and inner hyphens, 63 characters a label.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOSTNAME_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
ZONE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
# Lightsail resource names: letters, digits, '-', '_' and '.', starting with a letter or digit.
LIGHTSAIL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
ZONE_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$")
# Lightsail blueprint and bundle ids: lamp_ls_1_0, micro_3_0, ...
LIGHTSAIL_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
UNIX_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class KeySpec:
    """One config key: whether it is secret or required, and an example value for the fix."""

    key: str
    example: str
    secret: bool = False
    required: bool = True

    def fix(self) -> str:
        """The command that sets this key."""
        return set_command(self.key, self.example, secret=self.secret)


def set_command(key: str, value: str, *, secret: bool = False) -> str:
    """The command that sets one key.

    A secret is never shown on a command line (it would land in the shell's history and the
    process list): the CLI asks for it, or reads it from standard input.
    """
    if secret:
        return (f"pulumi config set --secret {key}  (enter the value when asked; all from the "
                "vault: python scripts/sync_secrets.py)")
    return f"pulumi config set {key} {value}"


def modules_command(shorts: list[str]) -> str:
    """The command that sets the module list to exactly `shorts`.

    A top-level config value is stored as a string; the program parses it as JSON, so one
    command sets the whole list (no `--path` per item).
    """
    value = json.dumps(shorts, separators=(",", ":"))
    return f"pulumi config set {NS}:modules '{value}'"


PLAIN_KEYS: tuple[KeySpec, ...] = (
    KeySpec("aws:region", "us-east-1"),
    KeySpec(f"{NS}:availability_zone", "us-east-1a"),
    KeySpec(f"{NS}:instance_name", "raxx-tickets"),
    KeySpec(f"{NS}:blueprint_id", "lamp_ls_1_0"),
    KeySpec(f"{NS}:bundle_id", "micro_3_0"),
    KeySpec(f"{NS}:static_ip_name", "raxx-tickets-ip"),
    KeySpec(f"{NS}:hostname", "tickets.raxx.app"),
    KeySpec(f"{NS}:cloudflare_zone_id", "<32-hex zone id of the domain in Cloudflare>"),
    KeySpec(f"{NS}:ssh_user", "admin"),
    KeySpec(f"{NS}:ssh_private_key_path", "~/.ssh/lightsail_us_east_1.pem"),
    KeySpec(f"{NS}:protect", "true", required=False),
    KeySpec(f"{NS}:admin_email", "admin@raxx.app", required=False),
    KeySpec(f"{NS}:freescout_ref", "dist", required=False),
)
SECRET_KEYS: tuple[KeySpec, ...] = (
    KeySpec("cloudflare:apiToken", "<Cloudflare API token with DNS edit>", secret=True),
    KeySpec(f"{NS}:mail_token", "<Postmark server token>", secret=True, required=False),
)
MODULES_KEY = f"{NS}:modules"


def license_spec(module: catalog.Module) -> KeySpec:
    """The secret key holding one module's license."""
    return KeySpec(f"{NS}:{module.license_key}", f"<{module.name} license key>", secret=True)


LICENSE_KEYS: tuple[KeySpec, ...] = tuple(license_spec(m) for m in catalog.CATALOG)
ALL_SPECS: dict[str, KeySpec] = {
    s.key: s for s in (*PLAIN_KEYS, *SECRET_KEYS, *LICENSE_KEYS)
}
KNOWN_KEYS: frozenset[str] = frozenset({*ALL_SPECS, MODULES_KEY})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config: the key, what is wrong, and the command that fixes it."""

    key: str
    # missing | placeholder | plaintext | encrypted | unknown_module | needs | malformed |
    # unknown_key
    kind: str
    message: str
    fix: str

    def render(self) -> str:
        """Two lines: the problem, then the fix."""
        return f"- {self.key}: {self.message}\n    fix: {self.fix}"


class InvalidConfig(UsageError):
    """The stack config has problems; nothing was declared. Lists every problem at once."""

    def __init__(self, problems: list[Problem], stack: str = ""):
        where = f" of stack '{stack}'" if stack else ""
        lines = [f"{len(problems)} problem(s) in the config{where}:"]
        lines += [p.render() for p in problems]
        super().__init__(
            "\n".join(lines),
            hint="run the 'fix' commands above (add --stack NAME if the stack is not selected), "
            "then 'python scripts/plan.py' to check",
        )
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """Everything the program needs, validated. Secret fields stay out of repr."""

    stack: str
    region: str
    availability_zone: str
    instance_name: str
    blueprint_id: str
    bundle_id: str
    static_ip_name: str
    hostname: str
    cloudflare_zone_id: str
    ssh_user: str
    ssh_private_key_path: str
    protect: bool
    admin_email: str
    freescout_ref: str
    modules: tuple[catalog.Module, ...]
    licenses: Mapping[str, str] = field(repr=False, compare=False)
    mail_token: str | None = field(default=None, repr=False, compare=False)

    def license_for(self, module: catalog.Module) -> str:
        """The license key of an enabled module."""
        return self.licenses[module.short]


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings_in(item)]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings_in(item)]
    return []


def parse_modules(value: Any) -> list[str] | None:
    """The module list from config: a YAML list, or a JSON list in a string.

    The string is what `pulumi config set freescout:modules '["tags"]'` stores and what the
    engine passes to the program for a YAML list. This is the only parser of the module list
    (the program, scripts/plan.py and the rebuild and restore tools all use it). None when the
    value is anything else (a comma list, a number, null, a list holding a non-string).
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def modules_problem(value: Any) -> Problem | None:
    """The problem with a module list `parse_modules` cannot read; None when it can."""
    if parse_modules(value) is not None:
        return None
    empty = value is None or (isinstance(value, str) and value.strip() in {"", "null"})
    what = "is empty (write [] to install no module)" if empty else \
        f"{value!r} is not a list of module names (a YAML list, or a JSON list in quotes)"
    return Problem(MODULES_KEY, "malformed", what, modules_command(list(catalog.SHORT_NAMES)))


def parse_bool(value: Any) -> bool | None:
    """A config boolean (`true`/`false` as string or bool); None when it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return None


def validate(values: Mapping[str, Any], secret_keys: Collection[str] = ()) -> list[Problem]:
    """Every problem in a config mapping (full keys to values), each with its fix command.

    `secret_keys` names the keys stored encrypted; a license or token stored in plain text is a
    problem too (it would sit readable in Pulumi.<stack>.yaml).
    """
    problems: list[Problem] = []

    def add(key: str, kind: str, message: str, fix: str) -> None:
        problems.append(Problem(key, kind, message, fix))

    # Placeholders anywhere, secrets included: they are never a real value.
    for key in sorted(values):
        if any(PLACEHOLDER in s.upper() for s in _strings_in(values[key])):
            spec = ALL_SPECS.get(key)
            fix = spec.fix() if spec else f"pulumi config set {key} <real value>"
            if key == MODULES_KEY:
                fix = modules_command(list(catalog.SHORT_NAMES))
            add(key, "placeholder", f"holds a placeholder ({PLACEHOLDER}...), not a value", fix)
    placeholder_keys = {p.key for p in problems}

    for key in sorted(values):
        if key.startswith(f"{NS}:") and key not in KNOWN_KEYS:
            add(key, "unknown_key", "is not a setting of this program (a typo?)",
                f"pulumi config rm {key}")

    for spec in (*PLAIN_KEYS, *SECRET_KEYS):
        value = values.get(spec.key)
        if _is_blank(value):
            if spec.required:
                add(spec.key, "missing", "is not set", spec.fix())
            continue
        if spec.secret and spec.key not in secret_keys and spec.key not in placeholder_keys:
            add(spec.key, "plaintext", "is stored in plain text; it must be a secret", spec.fix())
        if not spec.secret and spec.key in secret_keys:
            # Not a secret, and scripts/rebuild.py and restore.py read it from the stack file
            # without the passphrase: a plain `config set` stores it readable again.
            add(spec.key, "encrypted", "is stored encrypted, but it is not a secret and the "
                "rebuild tools must read it from the stack file", spec.fix())
    encrypted_plain = {spec.key for spec in PLAIN_KEYS if spec.key in secret_keys}

    for key, spec_ok, what in (
        ("aws:region", lambda v: bool(REGION_RE.match(v)), "an AWS region such as us-east-1"),
        (f"{NS}:availability_zone", lambda v: bool(ZONE_RE.match(v)),
         "an availability zone such as us-east-1a"),
        (f"{NS}:blueprint_id", lambda v: bool(LIGHTSAIL_ID_RE.match(v)),
         "a Lightsail blueprint id such as lamp_ls_1_0"),
        (f"{NS}:bundle_id", lambda v: bool(LIGHTSAIL_ID_RE.match(v)),
         "a Lightsail bundle id such as micro_3_0"),
        (f"{NS}:ssh_user", lambda v: bool(UNIX_USER_RE.match(v)), "a user name such as admin"),
        (f"{NS}:hostname", lambda v: bool(HOSTNAME_RE.match(v)) and len(v) <= 253,
         "a lower-case DNS name such as tickets.raxx.app"),
        (f"{NS}:cloudflare_zone_id", lambda v: bool(ZONE_ID_RE.match(v)),
         "32 lower-case hex digits (Cloudflare dashboard > domain > Overview > Zone ID)"),
        (f"{NS}:instance_name", lambda v: bool(LIGHTSAIL_NAME_RE.match(v)),
         "letters, digits, '-', '_' or '.'"),
        (f"{NS}:static_ip_name", lambda v: bool(LIGHTSAIL_NAME_RE.match(v)),
         "letters, digits, '-', '_' or '.'"),
        (f"{NS}:admin_email", lambda v: bool(EMAIL_RE.match(v)), "an e-mail address"),
        (f"{NS}:freescout_ref", lambda v: bool(REF_RE.match(v)), "a git branch or tag name"),
    ):
        value = values.get(key)
        if _is_blank(value) or key in placeholder_keys or key in encrypted_plain:
            continue
        if not isinstance(value, str) or not spec_ok(value):
            add(key, "malformed", f"{value!r} is malformed: expected {what}", ALL_SPECS[key].fix())

    region, zone = values.get("aws:region"), values.get(f"{NS}:availability_zone")
    if (isinstance(region, str) and isinstance(zone, str) and REGION_RE.match(region)
            and ZONE_RE.match(zone) and zone[:-1] != region):
        add(f"{NS}:availability_zone", "malformed",
            f"{zone!r} is not a zone of aws:region {region!r}",
            set_command(f"{NS}:availability_zone", f"{region}a"))

    protect = values.get(f"{NS}:protect")
    if not _is_blank(protect) and f"{NS}:protect" not in secret_keys \
            and parse_bool(protect) is None:
        add(f"{NS}:protect", "malformed",
            f"{protect!r} is not true or false (the instance's deletion protection)",
            set_command(f"{NS}:protect", "true"))

    raw_modules = values.get(MODULES_KEY)
    enabled: list[str] = []
    if raw_modules is None:
        add(MODULES_KEY, "missing", "is not set (an empty list [] installs no module)",
            modules_command(list(catalog.SHORT_NAMES)))
    elif MODULES_KEY in secret_keys:
        add(MODULES_KEY, "encrypted", "is stored encrypted, but it is not a secret and the "
            "rebuild tools must read it from the stack file",
            modules_command(list(catalog.SHORT_NAMES)))
    elif MODULES_KEY not in placeholder_keys:
        shape = modules_problem(raw_modules)
        if shape is not None:
            problems.append(shape)
        else:
            parsed = parse_modules(raw_modules) or []
            enabled = parsed
            bad = catalog.unknown(parsed)
            known = [s for s in parsed if s not in bad]
            for name in bad:
                add(MODULES_KEY, "unknown_module",
                    f"'{name}' is not a module; known: {', '.join(catalog.SHORT_NAMES)}",
                    modules_command(known))
            dupes = sorted({s for s in parsed if parsed.count(s) > 1})
            if dupes:
                add(MODULES_KEY, "malformed", f"lists {', '.join(dupes)} more than once",
                    modules_command(list(dict.fromkeys(known))))
            gaps = catalog.missing_needs(known)
            for short, lacking in gaps.items():
                fixed = list(dict.fromkeys(lacking + known))
                add(MODULES_KEY, "needs",
                    f"'{short}' needs {', '.join(lacking)}, which is not enabled",
                    modules_command([s for s in catalog.SHORT_NAMES if s in fixed]))

    for short in dict.fromkeys(enabled):
        module = catalog.BY_SHORT.get(short)
        if module is None:
            continue
        spec = license_spec(module)
        value = values.get(spec.key)
        if _is_blank(value):
            add(spec.key, "missing", f"license key of the enabled module {module.name} is not set",
                spec.fix())
        elif spec.key not in secret_keys and spec.key not in placeholder_keys:
            add(spec.key, "plaintext", "is stored in plain text; it must be a secret", spec.fix())
    return problems


# ---- the stack file, as the engine would read it -------------------------------------------

class _EngineYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, resolving scalars as the Pulumi CLI's YAML 1.2 parser does.

    Only `true`/`false` are booleans (YAML 1.1's `yes`, `no`, `on`, `off` are strings to the
    engine: `protect: no` must be refused here as the program refuses it), and a key written
    twice is an error, as the CLI makes it.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is written twice", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


_EngineYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_EngineYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))


@dataclass(frozen=True)
class StackFile:
    """Pulumi.<stack>.yaml's config: values as the engine passes them, and encrypted keys.

    `values` holds strings, as the program receives them: a YAML list or mapping as JSON,
    a boolean or number as its JSON text, an empty value as "". An encrypted key's value
    cannot be read without the passphrase: it holds `[encrypted in <file>]` and is listed in
    `encrypted`.
    """

    path: Path
    values: dict[str, str]
    encrypted: frozenset[str]
    raw: Mapping[str, Any] = field(repr=False)
    """The `config:` mapping as written (for reading one plain value)."""


def engine_value(value: Any) -> str:
    """One config value in the form the engine passes it to the program.

    As Pulumi's config.Value stores it: text as is, nothing as "", a date as Go prints a time,
    anything else as JSON (Go's: 1.0 is "1").
    """
    if value is None:
        return ""
    if isinstance(value, (str, date)):
        return _go_scalar(value)
    return json.dumps(_go_json(value), separators=(",", ":"))


def _go_scalar(value: str | date) -> str:
    if isinstance(value, str):
        return value
    moment = value if isinstance(value, datetime) else \
        datetime(value.year, value.month, value.day, tzinfo=UTC)
    if moment.tzinfo is None:  # YAML: a time without a zone is UTC
        moment = moment.replace(tzinfo=UTC)
    offset = moment.strftime("%z")
    zone = "UTC" if moment.utcoffset() == timedelta(0) else offset
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return f"{moment:%Y-%m-%d %H:%M:%S}{fraction} {offset} {zone}"


def _go_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _go_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_json(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, date):
        return _go_scalar(value)
    return value


def _is_ciphertext(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secure"), str)


def read_stack_file(project_dir: Path, stack: str) -> StackFile:
    """Read and check the shape of Pulumi.<stack>.yaml; UsageError naming what is wrong.

    Checks only the file's shape (a mapping with a `config:` mapping of `namespace:key`
    entries); `validate` judges the values.
    """
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise UsageError(f"no stack file {path.name} in {project_dir}",
                         hint=f"create the stack first: pulumi stack init {stack} "
                         "(or pass --stack NAME)")
    layout = ("the file must be a mapping whose `config:` key holds `namespace:key: value` "
              "lines; `pulumi config set <key> <value>` writes it in that form")
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_EngineYamlLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UsageError(f"{path.name} is not valid YAML: {error}",
                         hint="fix the line shown (indent with spaces, never tabs; a key "
                         f"written once); `git diff {path.name}` shows what changed") from error
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise UsageError(f"{path.name} holds a {_kind(document)}, not a mapping with a "
                         "`config:` key", hint=layout)
    raw = document.get("config")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UsageError(f"{path.name}: `config` holds a {_kind(raw)}, not a mapping",
                         hint=layout)
    odd = [repr(k) for k in raw if not isinstance(k, str) or ":" not in k]
    if odd:
        raise UsageError(f"{path.name}: config key(s) {', '.join(odd)} lack a namespace "
                         f"(write {NS}:<key> or aws:<key>)", hint=layout)
    values: dict[str, str] = {}
    encrypted: set[str] = set()
    for key, value in raw.items():
        if _is_ciphertext(value):
            encrypted.add(key)
            values[key] = f"[encrypted in {path.name}]"
        else:
            values[key] = engine_value(value)
    return StackFile(path, values, frozenset(encrypted), MappingProxyType(dict(raw)))


def _kind(value: Any) -> str:
    return {list: "list", dict: "mapping", str: "text", bool: "boolean", int: "number",
            float: "number"}.get(
        type(value), type(value).__name__)


def from_mapping(
    values: Mapping[str, Any], secret_keys: Collection[str] = (), *, stack: str = ""
) -> Settings:
    """Validate and build the settings; raise InvalidConfig listing every problem."""
    problems = validate(values, secret_keys)
    if problems:
        raise InvalidConfig(problems, stack)
    return build(values, stack=stack)


def build(values: Mapping[str, Any], *, stack: str = "") -> Settings:
    """The settings from a mapping that `validate` passed (or whose only gaps were filled).

    Use `from_mapping` unless the caller has validated already (the offline plan fills unset
    keys with visible stand-ins and reports them itself).
    """
    shorts = parse_modules(values[MODULES_KEY]) or []
    ordered = tuple(catalog.install_order(shorts))
    hostname = values[f"{NS}:hostname"]
    protect = parse_bool(values.get(f"{NS}:protect"))
    mail_token = values.get(f"{NS}:mail_token")
    return Settings(
        stack=stack,
        region=values["aws:region"],
        availability_zone=values[f"{NS}:availability_zone"],
        instance_name=values[f"{NS}:instance_name"],
        blueprint_id=values[f"{NS}:blueprint_id"],
        bundle_id=values[f"{NS}:bundle_id"],
        static_ip_name=values[f"{NS}:static_ip_name"],
        hostname=hostname,
        cloudflare_zone_id=values[f"{NS}:cloudflare_zone_id"],
        ssh_user=values[f"{NS}:ssh_user"],
        ssh_private_key_path=values[f"{NS}:ssh_private_key_path"],
        protect=True if protect is None else protect,
        admin_email=values.get(f"{NS}:admin_email") or f"admin@{hostname}",
        freescout_ref=values.get(f"{NS}:freescout_ref") or "dist",
        modules=ordered,
        licenses=MappingProxyType({m.short: values[license_spec(m).key] for m in ordered}),
        mail_token=None if _is_blank(mail_token) else mail_token,
    )


def from_pulumi_config() -> Settings:
    """Read the running stack's config once (inside a Pulumi program) and validate it."""
    # The runtime's own config map holds every key of the stack, so unknown keys (typos) show
    # up too; pulumi.Config.get would warn on each secret key and cannot list keys.
    from pulumi import get_stack
    from pulumi.runtime import config as runtime_config

    values = dict(runtime_config.CONFIG.get())
    for key in KNOWN_KEYS:
        if key not in values:
            found = runtime_config.get_config(key)
            if found is not None:
                values[key] = found
    secret = {k for k in values if runtime_config.is_config_secret(k)}
    return from_mapping(values, secret, stack=get_stack())
