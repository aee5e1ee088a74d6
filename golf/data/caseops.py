"""CaseOps (PR #1729, `lossless_caps_caseops_v1`): a bijective case transform, so the tokenizer sees
lowercase words and capitalization travels as a few operator characters from the Unicode private use area.

Every maximal run of ASCII letters (a word) is rewritten:

    lowercase word            unchanged                          the     -> the
    two or more capitals      ALLCAPS + lowercase word           NASA    -> ALLCAPS nasa
    otherwise                 [TITLE if it starts with a         Launch  -> TITLE launch
                              capital] + lowercase letters,      iPhone  -> i CAPNEXT phone
                              CAPNEXT before each later capital  OpenAI  -> TITLE open CAPNEXT a CAPNEXT i

Everything else is copied, except the four operator characters themselves, which are escaped as
ESC + character. Decoding reverses it exactly, so `decode(encode(text)) == text` for every string.

Byte accounting: lowercasing keeps every letter one byte, so the transformed text has exactly the original
UTF-8 bytes plus 3 bytes (the UTF-8 length of U+E001..U+E004) per operator. `original_byte_weights` gives
each byte of the transformed text's UTF-8 its share of original bytes (0 for operator bytes, 1 otherwise),
so any span of it, e.g. a token's, maps to the number of original bytes it stands for.
"""

import numpy as np

TITLE, ALLCAPS, CAPNEXT, ESC = "\ue001", "\ue002", "\ue003", "\ue004"
OPERATORS = (TITLE, ALLCAPS, CAPNEXT, ESC)
OPERATOR_BYTES = len(TITLE.encode("utf-8"))


class CaseOpsError(ValueError):
    """The text is not a CaseOps encoding (an operator in a place the encoder never puts one)."""


def _is_letter(ch: str) -> bool:
    return "a" <= ch <= "z" or "A" <= ch <= "Z"


def _encode_word(word: str) -> str:
    if word.islower():
        return word
    if len(word) >= 2 and word.isupper():
        return ALLCAPS + word.lower()
    out = [TITLE] if word[0].isupper() else []
    out.append(word[0].lower())
    for ch in word[1:]:
        out.append(CAPNEXT + ch.lower() if ch.isupper() else ch)
    return "".join(out)


def encode(text: str) -> str:
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if not _is_letter(ch):
            out.append(ESC + ch if ch in OPERATORS else ch)
            i += 1
            continue
        j = i + 1
        while j < n and _is_letter(text[j]):
            j += 1
        out.append(_encode_word(text[i:j]))
        i = j
    return "".join(out)


def decode(text: str) -> str:
    """The original text of a CaseOps encoding; a CaseOpsError names the first misplaced operator."""
    out = []
    word_mode = None  # TITLE or ALLCAPS announced for the next word
    in_allcaps = in_word = capnext = escaped = False
    for pos, ch in enumerate(text):
        if escaped:
            if ch not in OPERATORS:
                raise CaseOpsError(f"position {pos}: ESC must precede an operator character, found {ch!r}")
            out.append(ch)
            escaped = in_word = in_allcaps = False
            continue
        if ch == ESC or not _is_letter(ch):
            if word_mode or capnext:
                raise CaseOpsError(f"position {pos}: a case operator is not followed by a letter")
            if ch in (TITLE, ALLCAPS):
                if in_word:
                    raise CaseOpsError(f"position {pos}: a word operator inside a word")
                word_mode = ch
            elif ch == CAPNEXT:
                capnext = True
            else:
                escaped = ch == ESC
                if not escaped:
                    out.append(ch)
                in_word = in_allcaps = False
            continue
        if ch.isupper():
            raise CaseOpsError(f"position {pos}: capital letter {ch!r} in an encoded text")
        starts_word = not in_word
        if starts_word:
            in_allcaps = word_mode == ALLCAPS
        upper = in_allcaps or capnext or (starts_word and word_mode == TITLE)
        out.append(ch.upper() if upper else ch)
        word_mode, capnext, in_word = None, False, True
    if word_mode or capnext or escaped:
        raise CaseOpsError("the text ends with an unfinished operator")
    return "".join(out)


def original_byte_weights(transformed: str) -> np.ndarray:
    """uint8 per byte of transformed.encode('utf-8'): 1 where the byte belongs to original text, 0 on operators
    (ESC itself, TITLE, ALLCAPS, CAPNEXT; an escaped operator is original text)."""
    raw = transformed.encode("utf-8")
    weights = np.ones(len(raw), dtype=np.uint8)
    offset, escaped = 0, False
    for ch in transformed:
        size = len(ch.encode("utf-8"))
        if ch in OPERATORS and not escaped:
            weights[offset : offset + size] = 0
            escaped = ch == ESC
        else:
            escaped = False
        offset += size
    return weights
