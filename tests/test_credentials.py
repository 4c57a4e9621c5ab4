"""Content Credentials: every output deepswap writes carries a valid C2PA manifest (checked with
c2pa.Reader), signed by the user's self-made identity or a certificate they give, and verify reads
manifests of any signer, broken bindings included."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import c2pa
import numpy as np
import pytest
from PIL import Image
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from deepswap import __version__
from deepswap.cli import app
from deepswap.convert import ConvertOptions, convert
from deepswap.errors import DeepswapError
from deepswap.provenance.credentials import DIGITAL_SOURCE_TYPE, SigningIdentity, self_made_identity
from deepswap.userconfig import signing_identity
from deepswap.verify import verify_file
from deepswap.video import VideoWriter, read_frames, write_image
from deepswap.workspace import CONFIG_NAME, Workspace
from test_provenance import encode

OUTPUT_ID = "3fa2c1d9"


def make_chain(folder: Path, common_name: str, *, days: int = 365, leaf_eku: bool = True,
               curve: ec.EllipticCurve | None = None) -> tuple[Path, Path]:
    """An organisation's certificate chain (signing certificate + its CA) and key, as PEM files."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(curve or ec.SECP384R1())
    organisation = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Newsroom")
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Newsroom CA"), organisation])

    def issue(subject: x509.Name, public_key, is_ca: bool) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=2))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, is_ca, is_ca, False, False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))

    ca = issue(ca_name, ca_key.public_key(), True).sign(ca_key, hashes.SHA256())
    leaf = issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name), organisation]), key.public_key(), False)
    leaf = leaf.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    if leaf_eku:
        leaf = leaf.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
    leaf = leaf.sign(ca_key, hashes.SHA256())
    cert_path, key_path = folder / "chain.pem", folder / "key.pem"
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def active_manifest(path: Path) -> tuple[dict, str, dict]:
    """The active manifest, validation state and validation results, as c2pa.Reader gives them."""
    with c2pa.Reader(str(path)) as reader:
        return reader.get_active_manifest(), reader.get_validation_state(), reader.get_validation_results()


def deepswap_action(manifest: dict) -> dict:
    actions = [a for assertion in manifest["assertions"] if assertion["label"].startswith("c2pa.actions")
               for a in assertion["data"]["actions"]]
    return next(a for a in actions if a.get("softwareAgent", {}).get("name") == "deepswap")


@pytest.fixture(scope="module")
def frames(s1_clips: list[Path]) -> list[np.ndarray]:
    return [frame.image for frame in read_frames(s1_clips[0], duration=1.0)]


@pytest.fixture(scope="module")
def signed_video(frames: list[np.ndarray], s1_clips: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("signed") / "swapped.mp4"
    with VideoWriter(path, 25, replaced_person="s1", output_id=OUTPUT_ID, model="lite", source=s1_clips[0]) as writer:
        for frame in frames:
            writer.write(frame)
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".gif"])
def test_every_video_format_carries_a_valid_manifest(frames: list[np.ndarray], s1_clips: list[Path], tmp_path: Path,
                                                     suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    with VideoWriter(path, 25, output_id=OUTPUT_ID, model="lite", source=s1_clips[0]) as writer:
        for frame in frames[:10]:
            writer.write(frame)
    manifest, state, results = active_manifest(path)
    assert state == "Valid"
    assert any(code["code"].endswith("Hash.match") for code in results["activeManifest"]["success"])
    action = deepswap_action(manifest)
    assert action["action"] == "c2pa.edited" and action["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert action["softwareAgent"] == {"name": "deepswap", "version": __version__}
    assert action["parameters"]["output_id"] == OUTPUT_ID and action["parameters"]["model"] == "lite"
    ingredient, = manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf" and ingredient["title"] == s1_clips[0].name
    assert ingredient["format"] == "video/mp4"
    assert ingredient["metadata"]["deepswap.sha256"] == hashlib.sha256(s1_clips[0].read_bytes()).hexdigest()
    assert "thumbnail" not in json.dumps(manifest), "nothing of the input (or output) is copied into the manifest"
    assert not [p for p in tmp_path.iterdir() if p.name != path.name], "no temporaries left"


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".gif"])
def test_every_image_format_carries_a_valid_manifest(frames: list[np.ndarray], photos: list[Path], tmp_path: Path,
                                                     suffix: str) -> None:
    path = tmp_path / f"photo{suffix}"
    write_image(path, frames[0], output_id=OUTPUT_ID, model="hd", source=photos[0])
    manifest, state, _ = active_manifest(path)
    assert state == "Valid"
    action = deepswap_action(manifest)
    assert action["digitalSourceType"] == DIGITAL_SOURCE_TYPE and action["parameters"]["model"] == "hd"
    assert manifest["ingredients"][0]["title"] == photos[0].name
    report = verify_file(path)
    assert report.synthetic and report.label.output_id == OUTPUT_ID
    assert report.credentials.present and report.credentials.binding_intact and report.credentials.output_id == OUTPUT_ID


def test_an_output_without_an_input_file_is_created(frames: list[np.ndarray], tmp_path: Path) -> None:
    path = tmp_path / "made.png"
    write_image(path, frames[0], output_id=OUTPUT_ID)
    manifest, state, _ = active_manifest(path)
    assert state == "Valid" and not manifest.get("ingredients")
    assert deepswap_action(manifest)["action"] == "c2pa.created"


def test_an_input_c2pa_does_not_read_is_recorded_by_name_format_and_hash(frames: list[np.ndarray], raw_mpg: Path,
                                                                         tmp_path: Path) -> None:
    write_image(tmp_path / "out.png", frames[0], output_id=OUTPUT_ID, source=raw_mpg)
    manifest, state, _ = active_manifest(tmp_path / "out.png")
    ingredient, = manifest["ingredients"]
    assert state == "Valid" and ingredient["title"] == "lrwp9a.mpg" and ingredient["format"] == "video/mpeg"
    assert ingredient["metadata"]["deepswap.sha256"] == hashlib.sha256(raw_mpg.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["video", "gif", "photo", "preview"])
def test_convert_outputs_name_the_model_and_the_input(trained_workspace: Path, s1_clips: list[Path],
                                                      frames: list[np.ndarray], tmp_path: Path, kind: str) -> None:
    source = s1_clips[4]
    if kind == "photo":
        source = tmp_path / "s1.jpg"
        Image.fromarray(frames[0]).save(source)
    output = {"video": tmp_path / "out.mp4", "gif": tmp_path / "out.gif", "photo": tmp_path / "out.png",
              "preview": tmp_path / "look"}[kind]
    report = convert(trained_workspace, source, output,
                     ConvertOptions(duration=0.4, gif=kind == "gif", preview=2 if kind == "preview" else None))
    for path in report.files:
        manifest, state, _ = active_manifest(path)
        action = deepswap_action(manifest)
        assert state == "Valid" and action["parameters"] == {"output_id": report.output_id, "model": "lite"}
        assert manifest["ingredients"][0]["title"] == source.name
        assert verify_file(path).credentials.output_id == verify_file(path).watermark.output_id == report.output_id


def test_one_changed_byte_breaks_the_binding(signed_video: Path, tmp_path: Path) -> None:
    data = bytearray(signed_video.read_bytes())
    data[len(data) * 3 // 4] ^= 0x10  # inside the coded pictures
    changed = tmp_path / "changed.mp4"
    changed.write_bytes(bytes(data))
    credentials = verify_file(changed).credentials
    assert credentials.present and credentials.binding_intact is False
    assert "assertion.bmffHash.mismatch" in credentials.failures
    result = CliRunner().invoke(app, ["verify", str(changed)])
    assert "Content Credentials: present, binding broken" in result.output
    assert verify_file(signed_video).credentials.binding_intact is True


def test_reencoding_drops_the_manifest_but_not_the_watermark(signed_video: Path, tmp_path: Path) -> None:
    frames = [frame.image for frame in read_frames(signed_video)]
    reencoded = encode(frames, tmp_path / "crf28.mp4", 28)
    report = verify_file(reencoded)
    assert not report.credentials.present and report.label is None
    assert report.synthetic and report.watermark.output_id == OUTPUT_ID
    result = CliRunner().invoke(app, ["verify", str(reencoded)])
    assert result.exit_code == 0 and "Content Credentials: none" in result.output and "watermark: found" in result.output


def test_a_file_signed_with_another_key_is_reported_with_that_signer(frames: list[np.ndarray], tmp_path: Path) -> None:
    mine, other = signing_identity(), self_made_identity(tmp_path / "someone-else")
    assert mine.subject != other.subject
    write_image(tmp_path / "theirs.png", frames[0], output_id=OUTPUT_ID, signing=other)
    credentials = verify_file(tmp_path / "theirs.png").credentials
    assert credentials.binding_intact and credentials.signer == other.subject.split("CN=")[1]
    assert credentials.signer != mine.subject.split("CN=")[1]


def test_manifests_of_other_tools_are_read(tmp_path: Path, photos: list[Path]) -> None:
    cert, key = make_chain(tmp_path / "org", "Example Camera App")
    identity = SigningIdentity.load(cert, key)
    manifest = {"claim_generator_info": [{"name": "ExampleCamera", "version": "2.1"}],
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created",
                     "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}}]}
    signed = tmp_path / "camera.jpg"
    with open(photos[1], "rb") as source, open(signed, "w+b") as dest:
        c2pa.Builder(manifest).sign(identity.signer(), "image/jpeg", source, dest)
    report = verify_file(signed)
    credentials = report.credentials
    assert credentials.present and credentials.binding_intact and credentials.signer == "Example Camera App"
    assert credentials.claim_generator == "ExampleCamera 2.1" and credentials.output_id is None
    assert credentials.digital_source_types == ("http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",)
    assert not report.synthetic and report.exit_code == 1 and report.verdict == "no deepswap mark"


def test_a_user_supplied_certificate_signs_convert_outputs(trained_workspace: Path, s1_clips: list[Path],
                                                          tmp_path: Path) -> None:
    cert, key = make_chain(tmp_path / "org", "Example Newsroom signing")
    output = tmp_path / "out.mp4"
    result = CliRunner().invoke(app, ["convert", str(trained_workspace), str(s1_clips[4]), "-o", str(output),
                                      "--duration", "0.2", "--sign-cert", str(cert), "--sign-key", str(key)])
    assert result.exit_code == 0, result.output
    manifest, state, _ = active_manifest(output)
    assert state == "Valid" and manifest["signature_info"]["common_name"] == "Example Newsroom signing"
    assert manifest["signature_info"]["alg"].lower() == "es384"


def test_signing_identity_comes_from_options_then_workspace_then_user(tmp_path: Path, user_config_dir: Path) -> None:
    option = make_chain(tmp_path / "option", "From options")
    make_chain(tmp_path / "ws" / "certs", "From workspace")
    make_chain(user_config_dir / "certs", "From user")
    settings_file = tmp_path / "ws" / CONFIG_NAME
    workspace_settings = {"sign_cert": "certs/chain.pem", "sign_key": "certs/key.pem"}
    user_settings = user_config_dir / "config.toml"
    user_settings.write_text('[settings]\nsign_cert = "certs/chain.pem"\nsign_key = "certs/key.pem"\n')
    try:
        assert "From options" in signing_identity(*option, workspace_settings=(settings_file, workspace_settings)).subject
        assert "From workspace" in signing_identity(workspace_settings=(settings_file, workspace_settings)).subject
        assert "From user" in signing_identity().subject
        # a time-stamp authority is taken in the same order (and asked at once: these do not answer)
        user_settings.write_text('[settings]\ntsa_url = "http://127.0.0.1:9/user"\n')
        with pytest.raises(DeepswapError, match=r"127\.0\.0\.1:9/user: the time-stamp authority did not countersign"):
            signing_identity(workspace_settings=(settings_file, workspace_settings))
        with pytest.raises(DeepswapError, match=r"127\.0\.0\.1:9/option: the time-stamp authority"):
            signing_identity(tsa_url="http://127.0.0.1:9/option")
    finally:
        user_settings.unlink()
    assert signing_identity().subject == self_made_identity(user_config_dir / "signing").subject
    assert signing_identity().tsa_url is None, "no time-stamp authority unless one is named"


def test_the_workspace_setting_is_used_by_convert(trained_workspace: Path, s1_clips: list[Path], tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(trained_workspace, root)
    make_chain(root / "certs", "Workspace signer")
    workspace = Workspace.open(root)
    workspace.settings.update({"sign_cert": "certs/chain.pem", "sign_key": "certs/key.pem"})
    workspace.save()
    report = convert(root, s1_clips[4], tmp_path / "out.mp4", ConvertOptions(duration=0.2))
    assert verify_file(report.files[0]).credentials.signer == "Workspace signer"


def test_self_made_key_is_private_and_its_chain_signs(user_config_dir: Path) -> None:
    identity = signing_identity()
    folder = user_config_dir / "signing"
    assert os.stat(folder / "key.pem").st_mode & 0o777 == 0o600
    assert os.stat(folder).st_mode & 0o777 == 0o700
    assert identity.certificate_file == folder / "chain.pem" and len(x509.load_pem_x509_certificates(
        identity.chain)) == 2, "a signing certificate and the local CA that issued it"
    assert signing_identity() == identity, "made once, then reused"


def test_processes_creating_the_key_at_once_share_one(tmp_path: Path) -> None:
    script = ("import sys; from deepswap.provenance.credentials import self_made_identity; "
              "print(self_made_identity(sys.argv[1]).subject)")
    folder = tmp_path / "signing"
    runs = [subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True)
            for _ in range(4)]
    subjects = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert all(run.returncode == 0 for run in runs)
    assert len(subjects) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["signing"]


def test_bad_certificates_and_keys_give_one_line(tmp_path: Path) -> None:
    cert, key = make_chain(tmp_path / "good", "Good")
    _, other_key = make_chain(tmp_path / "other", "Other")
    expired = make_chain(tmp_path / "expired", "Expired", days=-1)
    no_eku = make_chain(tmp_path / "no-eku", "No EKU", leaf_eku=False)
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(serialization.load_pem_private_key(key.read_bytes(), None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")))
    cases = [
        ((tmp_path / "missing.pem", key), r"missing\.pem: cannot read the signing certificate"),
        ((tmp_path / "garbage.pem", key), r"garbage\.pem: not a PEM certificate chain"),
        ((cert, tmp_path / "garbage.pem"), r"garbage\.pem: not a PEM private key"),
        ((cert, encrypted), r"encrypted\.pem: the signing key is encrypted"),
        ((cert, other_key), r"key\.pem: does not match the signing certificate in .*good/chain\.pem"),
        (expired, r"chain\.pem: the signing certificate is valid only from"),
        (no_eku, r"chain\.pem: the C2PA library refuses this certificate for signing \("),
    ]
    for (cert_path, key_path), message in cases:
        with pytest.raises(DeepswapError, match=message) as caught:
            SigningIdentity.load(cert_path, key_path)
        assert "\n" not in str(caught.value)
    with pytest.raises(DeepswapError, match="give sign_cert and sign_key together"):
        ConvertOptions(sign_cert=cert)
    with pytest.raises(DeepswapError, match="key_file is missing"):
        signing_identity(cert)
    with pytest.raises(DeepswapError, match=r"deepswap\.toml: settings sign_cert and sign_key go together"):
        signing_identity(workspace_settings=(tmp_path / "deepswap.toml", {"sign_cert": str(cert)}))
