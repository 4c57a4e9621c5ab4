"""Content Credentials: a signed C2PA manifest in every output, declaring it an AI composite.

Platforms, newsrooms and editing tools read C2PA manifests without deepswap. Each output's
manifest (made with the ``c2pa-python`` library) holds one action with the IPTC digital source
type ``compositeWithTrainedAlgorithmicMedia``, deepswap and its version as the software agent,
and the model kind and output id (the same id as the label's and the watermark's) as parameters:
``c2pa.edited`` after ``c2pa.opened`` on the input, which is recorded as the parent ingredient
(its name, format and SHA-256, plus its own manifest if it has one; never a copy or a
thumbnail of it), or ``c2pa.created`` when there is no input file. The manifest is bound to the
file's bytes by a hash: any change to the file breaks the binding, and re-encoding drops it.

Signing needs no network and no account: :func:`self_made_identity` makes an ES256 key and a
certificate chain (a local CA and a signing certificate it issues, as the C2PA library requires)
on first use; :func:`deepswap.userconfig.signing_identity` keeps it in the user's folder and picks
an organisation's own chain and key instead when one is given. Such a self-made certificate
proves only that outputs came from the holder of that key, not who the holder is. No time-stamp
authority is asked unless one is named.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import io
import mimetypes
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import c2pa
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from .. import _io
from ..errors import DeepswapError

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
FORMATS = {".mp4": "video/mp4", ".mov": "video/quicktime", ".png": "image/png", ".jpg": "image/jpeg",
           ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}
KEY_NAME, CHAIN_NAME = "key.pem", "chain.pem"
SELF_MADE_YEARS = 10
_BINDINGS = ("assertion.dataHash", "assertion.bmffHash", "assertion.boxesHash", "assertion.collectionHash")
_CURVES = {"secp256r1": c2pa.C2paSigningAlg.ES256, "secp384r1": c2pa.C2paSigningAlg.ES384,
           "secp521r1": c2pa.C2paSigningAlg.ES512}
# No thumbnails (the input is never copied into the output); nothing is fetched over the network.
_SETTINGS = {"builder": {"thumbnail": {"enabled": False}},
             "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}


@dataclass(frozen=True)
class SigningIdentity:
    """A certificate chain (signing certificate first, PEM) and its private key (PKCS#8 PEM)."""

    chain: bytes = field(repr=False)
    key: bytes = field(repr=False)
    algorithm: c2pa.C2paSigningAlg
    subject: str
    certificate_file: Path
    tsa_url: str | None = None

    @classmethod
    def load(cls, certificate_file: str | Path, key_file: str | Path, tsa_url: str | None = None) -> SigningIdentity:
        """Read and check a chain and key: readable, PEM, matching, in date, accepted for signing;
        ``tsa_url``: a time-stamp authority to countersign each signature (it must answer)."""
        certificate_file, key_file = Path(certificate_file), Path(key_file)
        chain_pem = _read(certificate_file, "signing certificate")
        try:
            chain = x509.load_pem_x509_certificates(chain_pem)
        except ValueError:
            raise DeepswapError(f"{certificate_file}: not a PEM certificate chain") from None
        key = _load_key(key_file, _read(key_file, "signing key"))
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        if (chain[0].public_key().public_bytes(serialization.Encoding.DER, public)
                != key.public_key().public_bytes(serialization.Encoding.DER, public)):
            raise DeepswapError(f"{key_file}: does not match the signing certificate in {certificate_file}")
        now = datetime.datetime.now(datetime.timezone.utc)
        if not chain[0].not_valid_before_utc <= now <= chain[0].not_valid_after_utc:
            raise DeepswapError(f"{certificate_file}: the signing certificate is valid only from "
                                f"{chain[0].not_valid_before_utc:%Y-%m-%d} to {chain[0].not_valid_after_utc:%Y-%m-%d}")
        identity = cls(chain_pem, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()),
                       _algorithm(key_file, key), chain[0].subject.rfc4514_string(), certificate_file)
        _check_signing(identity)
        return identity.with_tsa(tsa_url)

    def with_tsa(self, tsa_url: str | None) -> SigningIdentity:
        """The same identity, time-stamped by ``tsa_url`` (checked with a trial signature)."""
        identity = dataclasses.replace(self, tsa_url=tsa_url)
        if tsa_url:
            _check_signing(identity)
        return identity

    def signer(self) -> c2pa.Signer:
        return c2pa.Signer.from_info(c2pa.C2paSignerInfo(self.algorithm, self.chain, self.key, self.tsa_url))


@functools.lru_cache(maxsize=8)
def _check_signing(identity: SigningIdentity) -> None:
    """Sign a one-pixel PNG, so that a certificate the C2PA library refuses, or a time-stamp
    authority that does not answer, fails before any work."""
    pixel = io.BytesIO()
    Image.new("L", (1, 1)).save(pixel, "PNG")
    pixel.seek(0)
    try:
        _builder(Claim(output_id="00000000", title="check.png")).sign(identity.signer(), "image/png", pixel,
                                                                      io.BytesIO())
    except c2pa.C2paError as error:
        if identity.tsa_url:
            raise DeepswapError(f"{identity.tsa_url}: the time-stamp authority did not countersign "
                                f"({_one_line(error)})") from None
        raise DeepswapError(f"{identity.certificate_file}: the C2PA library refuses this certificate for signing "
                            f"({_one_line(error)})") from None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise DeepswapError(f"{path}: cannot read the {what} ({error.strerror or error})") from None


def _load_key(path: Path, data: bytes) -> Any:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise DeepswapError(f"{path}: the signing key is encrypted; give it unencrypted (PEM)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise DeepswapError(f"{path}: not a PEM private key") from None


def _algorithm(path: Path, key: Any) -> c2pa.C2paSigningAlg:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVES:
        return _CURVES[key.curve.name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    if isinstance(key, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    raise DeepswapError(f"{path}: this kind of key cannot sign Content Credentials; "
                        "use EC P-256/P-384/P-521, Ed25519 or RSA")


def self_made_identity(folder: str | Path) -> SigningIdentity:
    """The self-made identity kept in ``folder`` (``key.pem``, ``chain.pem``), created on first use."""
    folder = Path(folder)
    if not (folder / KEY_NAME).is_file():
        _create_identity(folder)
    return SigningIdentity.load(folder / CHAIN_NAME, folder / KEY_NAME)


def _create_identity(folder: Path) -> None:
    """Write a new key and chain into a private temp folder, then rename it into place at once.

    Of two processes creating it together, the first rename wins and the other uses its files.
    """
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as error:
        raise DeepswapError(f"{folder}: cannot create a signing key here ({error.strerror or error}); "
                            "set DEEPSWAP_CONFIG_DIR or give a certificate and key") from None
    try:
        key_pem, chain_pem = _self_made_chain()
        _write_durably(staging / KEY_NAME, key_pem, 0o600)
        _write_durably(staging / CHAIN_NAME, chain_pem, 0o644)
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / KEY_NAME).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_durably(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _self_made_chain() -> tuple[bytes, bytes]:
    """An ES256 key, and a chain: a signing certificate (the profile C2PA requires) and its local CA."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    tag = hashlib.sha256(key.public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()[:8]
    organisation = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "self-made by deepswap, unverified")
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"deepswap local CA {tag}"), organisation])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"deepswap user {tag}"), organisation])

    def certificate(subject: x509.Name, public_key: Any, is_ca: bool) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=365 * SELF_MADE_YEARS))
                .add_extension(x509.BasicConstraints(ca=is_ca, path_length=0 if is_ca else None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=is_ca,
                                             crl_sign=is_ca, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))

    ca = certificate(ca_name, ca_key.public_key(), True).sign(ca_key, hashes.SHA256())
    leaf = (certificate(name, key.public_key(), False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Claim:
    """What an output's manifest states: its id, the model kind, and the input it was made from."""

    output_id: str
    title: str
    model: str | None = None
    source: Path | None = None


def sign(asset: Path | bytes, target: Path, claim: Claim, identity: SigningIdentity) -> None:
    """Write ``asset`` (a file, or the file's bytes) to ``target`` with a signed manifest of ``claim``.

    ``claim.title`` (the output's final name) gives the format.
    """
    mime = FORMATS[Path(claim.title).suffix.lower()]
    builder = _builder(claim)
    try:
        with (open(asset, "rb") if isinstance(asset, Path) else io.BytesIO(asset)) as source, \
                open(target, "w+b") as dest:
            builder.sign(identity.signer(), mime, source, dest)
    except c2pa.C2paError as error:
        raise DeepswapError(f"{claim.title}: could not sign its Content Credentials ({_one_line(error)})") from None


def _builder(claim: Claim) -> c2pa.Builder:
    agent = _agent()
    parameters = {"output_id": claim.output_id, **({"model": claim.model} if claim.model else {})}
    action = {"action": "c2pa.edited" if claim.source else "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE,
              "softwareAgent": agent, "description": "face swapped by deepswap", "parameters": parameters}
    definition: dict[str, Any] = {"claim_generator_info": [agent], "title": claim.title,
                                  "assertions": [{"label": "c2pa.actions", "data": {"actions": [action]}}]}
    if claim.source is None:
        return c2pa.Builder(definition, context=_context())
    mime = mimetypes.guess_type(claim.source.name)[0] or "application/octet-stream"
    ingredient = {"title": claim.source.name, "format": mime, "relationship": "parentOf",
                  "metadata": {"deepswap.sha256": _sha256(claim.source, *_stamp(claim.source))}}
    builder = None
    if mime in c2pa.Builder.get_supported_mime_types():
        builder = c2pa.Builder(definition, context=_context())
        try:
            with open(claim.source, "rb") as stream:  # the library reads its manifest, if it has one
                builder.add_ingredient(ingredient, mime, stream)
        except (OSError, c2pa.C2paError):
            builder = None
    if builder is None:
        builder = c2pa.Builder({**definition, "ingredients": [ingredient]}, context=_context())
    builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
    return builder


def _agent() -> dict[str, str]:
    from .. import __version__

    return {"name": "deepswap", "version": __version__}


def _stamp(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


@functools.lru_cache(maxsize=8)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file (cached by size and time: every preview of one input shares it)."""
    return _io.sha256_file(path)


@functools.lru_cache(maxsize=1)
def _context() -> c2pa.Context:
    return c2pa.Context(settings=c2pa.Settings.from_dict(_SETTINGS))


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


@dataclass(frozen=True)
class CredentialsReport:
    """What a file's C2PA manifest (written by any tool) says, and whether it holds.

    ``binding_intact``: the hash binding the manifest to the file's bytes matches (None when the
    library reported no binding check). ``trusted``: the signer is on a trust list the library
    knows (a self-made certificate never is). ``output_id``/``model``: from a deepswap action.
    """

    present: bool
    problem: str | None = None
    signer: str | None = None
    issuer: str | None = None
    claim_generator: str | None = None
    digital_source_types: tuple[str, ...] = ()
    binding_intact: bool | None = None
    signature_valid: bool | None = None
    trusted: bool = False
    validation_state: str | None = None
    failures: tuple[str, ...] = ()
    output_id: str | None = None
    model: str | None = None

    def describe(self) -> str:
        """A short human-readable summary."""
        if self.problem:
            return f"unreadable ({self.problem})"
        if not self.present:
            return "none"
        binding = {True: "binding intact", False: "binding broken (the file changed after signing)",
                   None: "binding not checked"}[self.binding_intact]
        parts = [f"present, {binding}"]
        if self.signature_valid is False:
            parts.append("signature invalid")
        signer = self.signer or "unknown signer"
        parts.append(f"signed by {signer}" + (f" ({self.issuer})" if self.issuer and self.issuer != signer else "")
                     + ("" if self.trusted else ", not on a trust list"))
        if self.digital_source_types:
            parts.append(", ".join(t.rsplit("/", 1)[-1] for t in self.digital_source_types))
        if self.claim_generator:
            parts.append(f"made with {self.claim_generator}")
        if self.output_id:
            parts.append(f"id {self.output_id}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def read_credentials(path: str | Path) -> CredentialsReport:
    """Read and validate the C2PA manifest of a file, if it has one (no network is used)."""
    try:
        reader = c2pa.Reader.try_create(str(path), context=_context())
    except c2pa.C2paError.NotSupported:
        return CredentialsReport(present=False)
    except c2pa.C2paError as error:
        return CredentialsReport(present=False, problem=_one_line(error))
    if reader is None:
        return CredentialsReport(present=False)
    with reader:
        manifest = reader.get_active_manifest() or {}
        results = (reader.get_validation_results() or {}).get("activeManifest", {})
        state = reader.get_validation_state()
    successes = {entry.get("code", "") for entry in results.get("success", [])}
    failures = tuple(entry.get("code", "") for entry in results.get("failure", []))
    binding: bool | None = None
    if any(code.startswith(_BINDINGS) for code in successes):
        binding = True
    if any(code.startswith(_BINDINGS) for code in failures):
        binding = False
    signature = manifest.get("signature_info", {})
    actions = [action for assertion in manifest.get("assertions", [])
               if str(assertion.get("label", "")).startswith("c2pa.actions")
               for action in assertion.get("data", {}).get("actions", [])]
    ours = next((action for action in actions if _agent_name(action.get("softwareAgent")) == "deepswap"), {})
    parameters = ours.get("parameters") or {}
    return CredentialsReport(
        present=True,
        signer=signature.get("common_name"),
        issuer=signature.get("issuer"),
        claim_generator=_generator(manifest),
        digital_source_types=tuple(dict.fromkeys(a["digitalSourceType"] for a in actions if a.get("digitalSourceType"))),
        binding_intact=binding,
        signature_valid=("claimSignature.validated" in successes) if successes or failures else None,
        trusted="signingCredential.trusted" in successes,
        validation_state=state,
        failures=failures,
        output_id=_text(parameters.get("output_id")),
        model=_text(parameters.get("model")),
    )


def _agent_name(agent: Any) -> str | None:
    return agent.get("name") if isinstance(agent, dict) else agent if isinstance(agent, str) else None


def _generator(manifest: Mapping[str, Any]) -> str | None:
    infos = manifest.get("claim_generator_info") or []
    if infos and isinstance(infos[0], dict) and infos[0].get("name"):
        return " ".join(str(infos[0][key]) for key in ("name", "version") if infos[0].get(key))
    return _text(manifest.get("claim_generator"))


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None
