"""The sentence set the embedding checks use (tests/test_embeddings.py, scripts/embed_fixtures.py,
benchmarks/embed_bench.py): English, Spanish with accents, German, French, Chinese, Japanese, Russian, Arabic, Korean,
emoji, code, numbers, very short and long sentences. Every one stays under all-MiniLM-L6-v2's 256-token limit in
sentence-transformers, so that no side truncates."""

from __future__ import annotations

_LONG_EN = (
    "Retrieval-augmented generation splits each document into passages, embeds every passage once, stores the "
    "vectors in an index, and at question time embeds the question with the same model, finds the nearest passages "
    "by cosine similarity and hands them to the language model together with the question, so that the answer can "
    "cite where each fact came from instead of relying on what the model happened to memorize during training."
)
_LONG_ES = (
    "La búsqueda semántica compara el significado de las frases y no solo sus palabras: una pregunta sobre "
    "«cómo se cocina el arroz» encuentra también los párrafos que hablan de la paella, del risotto o de la "
    "preparación del arroz con leche, aunque ninguno repita exactamente las mismas palabras de la consulta."
)

SENTENCES: list[str] = [
    # English
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "How do I reset my password if I no longer have access to my email account?",
    "Machine learning models turn sentences into vectors.",
    "It's raining cats and dogs; don't forget your umbrella.",
    "Dr. Smith's lab (room 4.12) opens at 9:30 a.m. on weekdays.",
    _LONG_EN,
    # Spanish, with accents and inverted marks
    "¿Dónde está la estación de tren más cercana?",
    "El niño comió una manzana y después durmió la siesta.",
    "Mañana iré al médico porque me duele la cabeza.",
    _LONG_ES,
    # German
    "Die Straße ist nach dem Regen sehr nass und rutschig.",
    "Größere Datenmengen benötigen mehr Speicherplatz.",
    "Ich hätte gern ein Stück Käsekuchen, bitte.",
    # French
    "Où se trouve la bibliothèque municipale ?",
    "L'été dernier, nous sommes allés à la plage près de Nice.",
    "Ça coûte combien ? — Vingt-cinq euros, s'il vous plaît.",
    # Chinese
    "我喜欢在周末读书和散步。",
    "机器学习正在改变我们处理文本的方式。",
    "今天天气很好，我们去公园吧！",
    # Japanese
    "東京は日本の首都です。",
    "今日はとても暑いですね。",
    "カタカナとひらがなを混ぜた文章です。",
    # Russian
    "Москва — столица России.",
    "Я люблю читать книги по вечерам.",
    "Сколько стоит билет до Санкт-Петербурга?",
    # Arabic
    "مرحبا بالعالم",
    "أين أقرب محطة قطار؟",
    # Korean, Greek, Hindi
    "안녕하세요, 만나서 반갑습니다.",
    "Η γρήγορη καφέ αλεπού πηδάει.",
    "मुझे हिंदी में किताबें पढ़ना पसंद है।",
    # emoji
    "I love pizza 🍕🍕 and ice cream 🍦!",
    "🎉🎉🎉",
    "Deploy succeeded ✅ — tests failed ❌ — rollback 🔁",
    # code
    "def add(a, b):\n    return a + b",
    "for (int i = 0; i < n; ++i) { sum += x[i] * y[i]; }",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
    '{"key": "value", "list": [1, 2, 3], "nested": {"ok": true}}',
    "git commit -m 'fix: handle empty input' && git push origin main",
    "https://example.com/path?query=embedding&lang=en#section-2",
    # numbers
    "3.14159 2.71828 1.41421",
    "The invoice total is $1,234.56, due on 2024-03-15.",
    "Call +1 (555) 010-9999 or +44 20 7946 0958.",
    "42",
    "1st 2nd 3rd 4th 100th",
    # very short
    "a",
    "Hi",
    "?",
    "OK.",
    "",
    # whitespace and odd characters
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nmixed",
    "ÀÉÎÕÜ àéîõü ñ Ñ ç Ç ß",
    "naïve coöperate façade résumé",
    "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ",
    "Mixed 中文 and English with español y 日本語.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "word " * 60,
    "HTML &amp; entities &lt;b&gt;bold&lt;/b&gt;",
]
