"""The fixed vocabulary of the bundled data: historical periods and kinds of rejected-answer flaw."""

# slug -> (English name, Mongolian name), in chronological order
PERIODS: dict[str, tuple[str, str]] = {
    "xiongnu": ("Xiongnu", "Хүннү гүрэн"),
    "xianbei-rouran": ("Xianbei and Rouran", "Сяньби, Нирун"),
    "turkic-uyghur": ("Turkic and Uyghur khaganates", "Түрэг, Уйгурын хаант улс"),
    "khitan": ("Khitan Liao", "Кидан Ляо гүрэн"),
    "chinggis": ("Chinggis Khaan and the Great Mongol State", "Чингис хаан ба Их Монгол Улс"),
    "empire": ("Ögedei, Güyük, Möngke and Kharkhorum", "Өгэдэй, Гүюг, Мөнх хаад ба Хархорум"),
    "yuan": ("Khubilai and the Yuan", "Хубилай хаан ба Юань улс"),
    "northern-yuan": ("Northern Yuan, Dayan and Altan Khaan", "Умард Юань, Даян хаан, Алтан хаан"),
    "buddhism": ("Buddhism, Abtai Sain Khaan, Zanabazar", "Бурхны шашин, Абтай сайн хаан, Занабазар"),
    "qing": ("Qing rule, 1691-1911", "Манж Чин гүрний эрхшээл"),
    "bogd-khaan": ("The Bogd Khaan state and Kyakhta", "Богд хаант Монгол Улс"),
    "revolution": ("The 1921 revolution and the 1924 republic", "1921 оны хувьсгал, БНМАУ"),
    "socialist": ("The socialist period", "Социализмын үе"),
    "democracy": ("The 1990 democratic revolution and after", "Ардчилсан хувьсгал, 1992 оны Үндсэн хууль"),
    "culture": ("Culture, script and law", "Соёл, бичиг, хууль"),
}

# what is wrong with a pair's rejected answer
FLAWS: dict[str, str] = {
    "wrong-date": "a wrong date or number (a minimal pair: chosen with one date, or two that go together, changed)",
    "wrong-name": "a wrong person or title",
    "wrong-place": "a wrong place",
    "vague": "evasive or generic, no facts",
    "incomplete": "true but stops short of the point",
    "off-topic": "answers another question",
    "russian-mix": "Mongolian mixed with Russian words",
}

DEGRADATIONS = ("repetition", "russian", "latin", "shuffled")
