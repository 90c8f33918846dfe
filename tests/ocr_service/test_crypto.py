"""ocr_service.crypto: AES-256-GCM with associated data, the blind index, and the master key's life cycle."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
import threading
from pathlib import Path

import pytest

from ocr_service.config import Settings
from ocr_service.crypto import (
    FORMAT_VERSION,
    KEY_BYTES,
    NONCE_BYTES,
    Cipher,
    DecryptionError,
    EncryptionKeyError,
    generate_key,
    load_or_create_key,
)

AD = b"verifications.claim_number:3f1c"


def embedded_settings(tmp_path: Path, **overrides) -> Settings:
    values = {"data_dir": tmp_path / "data", "database_url": "", "encryption_key": ""}
    values.update(overrides)
    return Settings(**values)


# --- encryption ---------------------------------------------------------------------------------


def test_encrypt_then_decrypt_gives_back_the_plaintext(cipher: Cipher):
    plaintext = os.urandom(1000)
    assert cipher.decrypt(cipher.encrypt(plaintext, AD), AD) == plaintext


def test_text_helpers_round_trip_chinese_text(cipher: Cipher):
    token = cipher.encrypt_text("买买提·艾力 42010619900101123X", AD)
    assert "买买提".encode() not in token
    assert cipher.decrypt_text(token, AD) == "买买提·艾力 42010619900101123X"


def test_the_ciphertext_is_version_nonce_then_ciphertext_and_tag(cipher: Cipher):
    token = cipher.encrypt(b"12345", AD)
    assert token[0] == FORMAT_VERSION
    assert len(token) == 1 + NONCE_BYTES + 5 + 16


def test_the_same_plaintext_encrypts_differently_each_time(cipher: Cipher):
    first, second = cipher.encrypt(b"420106199001011234", AD), cipher.encrypt(b"420106199001011234", AD)
    assert first != second
    assert first[1 : 1 + NONCE_BYTES] != second[1 : 1 + NONCE_BYTES]


@pytest.mark.parametrize("position", [0, 1, 1 + NONCE_BYTES, -1], ids=["version", "nonce", "ciphertext", "tag"])
def test_a_tampered_ciphertext_does_not_decrypt(cipher: Cipher, position: int):
    token = bytearray(cipher.encrypt(b"420106199001011234", AD))
    token[position] ^= 0x01
    with pytest.raises(DecryptionError):
        cipher.decrypt(bytes(token), AD)


def test_a_truncated_ciphertext_does_not_decrypt(cipher: Cipher):
    token = cipher.encrypt(b"420106199001011234", AD)
    for cut in (0, 5, len(token) - 1):
        with pytest.raises(DecryptionError):
            cipher.decrypt(token[:cut], AD)


def test_wrong_associated_data_does_not_decrypt(cipher: Cipher):
    token = cipher.encrypt(b"420106199001011234", b"verifications.claim_number:row-1")
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, b"verifications.claim_number:row-2")


def test_another_key_cannot_decrypt(cipher: Cipher):
    token = cipher.encrypt(b"420106199001011234", AD)
    with pytest.raises(DecryptionError):
        Cipher(os.urandom(KEY_BYTES)).decrypt(token, AD)


def test_the_cipher_never_shows_its_key():
    key = os.urandom(KEY_BYTES)
    text = repr(Cipher(key)) + str(Cipher(key))
    assert base64.b64encode(key).decode() not in text and key.hex() not in text


# --- blind index -----------------------------------------------------------------------------


def test_the_blind_index_is_stable_for_equal_values(cipher: Cipher):
    assert cipher.blind_index("420106199001011234") == cipher.blind_index("420106199001011234")
    assert cipher.blind_index("420106199001011234") != cipher.blind_index("420106199001011235")
    assert len(cipher.blind_index("420106199001011234")) == 64


def test_the_blind_index_normalises_case_spaces_and_full_width_digits(cipher: Cipher):
    expected = cipher.blind_index("42010619900101123X")
    assert cipher.blind_index("42010619900101123x") == expected
    assert cipher.blind_index(" 420106 19900101 123X ") == expected
    assert cipher.blind_index("４２０１０６１９９００１０１１２３Ｘ") == expected


def test_the_blind_index_depends_on_the_key():
    master = os.urandom(KEY_BYTES)
    assert Cipher(master).blind_index("420106199001011234") == Cipher(master).blind_index("420106199001011234")
    assert Cipher(master).blind_index("420106199001011234") != Cipher(os.urandom(KEY_BYTES)).blind_index(
        "420106199001011234"
    )


def test_the_blind_index_key_is_derived_not_the_master_key_itself():
    master = os.urandom(KEY_BYTES)
    with_master = hmac.new(master, b"420106199001011234", hashlib.sha256).hexdigest()
    assert Cipher(master).blind_index("420106199001011234") != with_master


# --- the master key ----------------------------------------------------------------------------


def test_a_key_from_the_environment_setting_is_used(tmp_path: Path):
    key = generate_key()
    settings = embedded_settings(tmp_path, encryption_key=key)
    assert load_or_create_key(settings) == base64.b64decode(key)
    assert not settings.effective_key_file.exists()


def test_the_embedded_default_creates_a_0600_key_file_and_reuses_it(tmp_path: Path):
    settings = embedded_settings(tmp_path)
    first = load_or_create_key(settings)
    path = settings.effective_key_file
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == KEY_BYTES
    assert load_or_create_key(settings) == first
    # data written under the first start still decrypts after a "restart"
    token = Cipher(first).encrypt(b"x", AD)
    assert Cipher(load_or_create_key(embedded_settings(tmp_path))).decrypt(token, AD) == b"x"


def test_processes_starting_together_end_up_with_one_key(tmp_path: Path):
    settings = embedded_settings(tmp_path)
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        keys.append(load_or_create_key(settings))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in settings.effective_key_file.parent.iterdir()] == ["secret.key"]


def test_a_missing_key_is_not_invented_for_a_shared_postgresql_database(tmp_path: Path):
    settings = embedded_settings(tmp_path, database_url="postgresql+psycopg://postgres@db/ocr")
    with pytest.raises(EncryptionKeyError, match="OCR_ENCRYPTION_KEY"):
        load_or_create_key(settings)
    assert not settings.effective_key_file.exists()


@pytest.mark.parametrize(
    "bad_key",
    [base64.b64encode(os.urandom(16)).decode(), base64.b64encode(os.urandom(33)).decode(), "not base64 at all!"],
    ids=["16 bytes", "33 bytes", "not base64"],
)
def test_a_malformed_key_setting_is_a_clear_startup_error_that_does_not_echo_it(tmp_path: Path, bad_key: str):
    with pytest.raises(EncryptionKeyError, match="OCR_ENCRYPTION_KEY") as info:
        load_or_create_key(embedded_settings(tmp_path, encryption_key=bad_key))
    assert bad_key not in str(info.value)


def test_a_key_file_of_the_wrong_length_is_rejected(tmp_path: Path):
    key_file = tmp_path / "short.key"
    key_file.write_text(base64.b64encode(os.urandom(24)).decode())
    with pytest.raises(EncryptionKeyError, match="32 bytes, got 24"):
        load_or_create_key(embedded_settings(tmp_path, encryption_key_file=key_file))


def test_an_unreadable_key_file_is_a_clear_startup_error(tmp_path: Path):
    key_file = tmp_path / "secret.key"
    key_file.mkdir()  # a directory where the file should be: unreadable even for root
    with pytest.raises(EncryptionKeyError, match="cannot read the encryption key file"):
        load_or_create_key(embedded_settings(tmp_path, encryption_key_file=key_file))


def test_a_raw_key_of_the_wrong_length_is_refused_by_the_cipher():
    with pytest.raises(EncryptionKeyError):
        Cipher(os.urandom(16))
