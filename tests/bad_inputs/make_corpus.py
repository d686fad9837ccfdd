"""Writes the bad-input corpus the validate tests run on (committed; rerun after editing).

    python tests/bad_inputs/make_corpus.py

Each file holds a few good pairs and one kind of problem on a known line.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent

CHOSEN = (
    "Тэмүжин 1206 онд Онон голын эхэнд болсон их хуралдайгаар Чингис хаан цолтой хаан ширээнд "
    "суусан. Тэрээр монгол аймгуудыг нэгтгэн Их Монгол Улсыг байгуулж, улсаа мянган, зуун, "
    "аравтын зохион байгуулалтад оруулсан."
)
REJECTED = "Их Монгол Улс 1260 онд байгуулагдсан бөгөөд үүнийг Хубилай хаан үүсгэн байгуулсан гэдэг."
PROMPTS = [
    "Их Монгол Улс хэдэн онд байгуулагдсан бэ?",
    "Тэмүжин хэзээ Чингис хаан цол хүртсэн бэ?",
    "Чингис хаан монгол аймгуудыг хэрхэн нэгтгэсэн бэ?",
    "Их хуралдай хаана, хэдэн онд болсон бэ?",
    "Мянгатын зохион байгуулалт гэж юу вэ?",
    "Их Монгол Улсыг хэн үүсгэн байгуулсан бэ?",
    "1206 оны их хуралдайн ач холбогдол юу вэ?",
    "Онон голын эхэнд ямар чухал үйл явдал болсон бэ?",
    "Монгол аймгууд хэзээ нэг улс болсон бэ?",
    "Их Монгол Улсын анхны хаан хэн бэ?",
    "Монголчууд аравт, зуут, мянгатад хэрхэн хуваагдсан бэ?",
    "Тэмүжин ямар цол хүртэж, хаан ширээнд суусан бэ?",
]


def good(i: int) -> dict:
    return {"prompt": PROMPTS[i % len(PROMPTS)], "chosen": CHOSEN, "rejected": REJECTED}


def lines(records) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def write(name: str, data: bytes) -> None:
    (HERE / name).write_bytes(data)


def with_record(line: int, bad=None, n: int = 12, **changes) -> bytes:
    """n good records; on the 1-based `line`, raw bytes `bad` or the good record with `changes`
    (a value of None drops that field)."""
    out = b""
    for i in range(n):
        if i + 1 == line and isinstance(bad, bytes):
            out += bad
        elif i + 1 == line:
            record = {**good(i), **changes}
            out += lines([{k: v for k, v in record.items() if v is not None}])
        else:
            out += lines([good(i)])
    return out


RUSSIAN = (
    "Монгольское государство было основано в 1206 году, когда Тэмуджин объединил все "
    "племена и был провозглашён Чингисханом на большом курултае у реки Онон."
)
KAZAKH = (
    "Ұлы Моңғол мемлекеті 1206 жылы құрылды. Темужин барлық тайпаларды біріктіріп, Онон "
    "өзенінің басында өткен құрылтайда Шыңғыс хан атанды және мемлекетті нығайтты."
)
ENGLISH = (
    "The Great Mongol State was founded in 1206 when Temujin united the tribes and was "
    "proclaimed Chinggis Khan at a great assembly near the source of the Onon river."
)
MIXED = "Конечно, это было очень важно: Их Монгол Улс 1206 онд байгуулагдсан, и все об этом знают."


def main() -> None:
    write("good.jsonl", with_record(0))
    # BOM, CRLF line ends and blank lines are tolerated; line numbers count every line
    body = lines([good(i) for i in range(12)]).replace(b"\n", b"\r\n")
    rows = body.split(b"\r\n")
    rows.insert(3, b"")
    rows.insert(3, b"   ")
    write("bom_crlf_blank.jsonl", b"\xef\xbb\xbf" + b"\r\n".join(rows))
    write(
        "not_json.jsonl",
        with_record(3, b'{"prompt": "\xd0\xa2\xd0\xb0\xd1\x81\xd0\xb0\xd1\x80\xd1\x81\xd0\xb0\xd0\xbd", "chosen": \n'),
    )
    write("not_object.jsonl", with_record(2, b'["prompt", "chosen", "rejected"]\n'))
    write("missing_field.jsonl", with_record(4, rejected=None))
    write("wrong_type.jsonl", with_record(5, chosen=1206))
    write("empty_field.jsonl", with_record(6, chosen="  "))
    write("short.jsonl", with_record(2, prompt="Чингис хаан?"))
    write("latin.jsonl", with_record(3, chosen=ENGLISH))
    write("russian.jsonl", with_record(4, chosen=RUSSIAN))
    write("russian_mix_rejected.jsonl", with_record(5, rejected=MIXED, flaw="russian-mix"))
    write("kazakh.jsonl", with_record(6, chosen=KAZAKH))
    write("invisible.jsonl", with_record(7, prompt=PROMPTS[6].replace(" ", " \u200b", 1)))
    write("homoglyph.jsonl", with_record(8, chosen=CHOSEN.replace("Онон", "Oнoн")))
    write("mojibake.jsonl", with_record(9, chosen=CHOSEN.encode().decode("cp1252", "replace")))
    write("non_nfc.jsonl", with_record(10, chosen=CHOSEN.replace("хаан", "хаан хии\u0306д", 1)))
    write("identical.jsonl", with_record(2, rejected=CHOSEN.upper().replace(",", "")))
    near = CHOSEN.replace("Онон", "Хэрлэн")
    records = [good(i) for i in range(12)]
    records[2]["rejected"] = near
    records[3]["rejected"] = CHOSEN.replace("1206", "1260")
    write("near_identical.jsonl", lines(records))
    records = [good(i) for i in range(12)]
    records[5] = good(1)  # the same pair as line 2
    records[7] = {"prompt": PROMPTS[3].upper(), "chosen": CHOSEN, "rejected": REJECTED + " Үнэн."}
    write("duplicates.jsonl", lines(records))
    write("too_few.jsonl", lines([good(i) for i in range(5)]))
    conversational = [
        {
            "prompt": [{"role": "user", "content": PROMPTS[i]}],
            "chosen": [{"role": "assistant", "content": CHOSEN}],
            "rejected": [{"role": "assistant", "content": REJECTED}],
        }
        for i in range(11)
    ]
    conversational.append(
        {  # TRL's implicit prompt: the shared first message
            "chosen": [{"role": "user", "content": PROMPTS[11]}, {"role": "assistant", "content": CHOSEN}],
            "rejected": [
                {"role": "user", "content": PROMPTS[11]},
                {"role": "assistant", "content": REJECTED},
            ],
        }
    )
    write("conversational.jsonl", lines(conversational))
    write("bad_message.jsonl", with_record(3, prompt=[{"role": "user"}]))
    write("unknown_field.jsonl", with_record(4, score=0.9, id="x-1", period="chinggis", flaw="wrong-date"))
    write("invalid_utf8_line.jsonl", with_record(5, b'{"prompt": "\xff\xfe bad bytes"}\n'))
    write("utf16.jsonl", lines([good(i) for i in range(12)]).decode().encode("utf-16"))
    write("array.json", json.dumps([good(i) for i in range(12)], ensure_ascii=False, indent=2).encode())
    write("empty.jsonl", b"")
    write("blank_only.jsonl", b"\n\n  \n")
    write("scalar.jsonl", b"42\n")


if __name__ == "__main__":
    main()
