"""``engine: presidio``: the ``pii`` step's spans from Microsoft Presidio's pattern and checksum recognizers.

For teams that standardise on Presidio. Presidio's analyzer wants a spaCy pipeline for its NER
recognizer and would download ``en_core_web_lg``; this engine gives it a blank spaCy pipeline
instead (tokenizer only, nothing downloaded), so its named-entity recognizer finds nothing and
every span comes from the regex/checksum recognizers (and its phonenumbers-based phone
recognizer), all of which are registered for every document whatever its language. ``tldextract`` (used by Presidio's e-mail recognizer) is pointed at
its bundled public-suffix snapshot, so nothing is fetched at run time either.

Needs ``pip install 'corpusforge[presidio]'`` (presidio-analyzer with spaCy, ~245 MB).
"""

from __future__ import annotations

import inspect

from corpusforge.privacy.detectors import Span

# Presidio entity -> our category. Entities not listed (URL, DATE_TIME, UUID, MAC_ADDRESS,
# licence plates, vehicle and company numbers, crypto wallets...) are not personal data we redact.
ENTITY_CATEGORY: dict[str, str] = {
    "EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "IP_ADDRESS": "ip_address", "CREDIT_CARD": "credit_card",
    "IBAN_CODE": "iban",
    **{e: "national_id" for e in (
        "US_SSN", "US_ITIN", "US_PASSPORT", "US_DRIVER_LICENSE", "UK_NINO", "UK_NHS", "UK_PASSPORT",
        "UK_DRIVING_LICENCE", "ES_NIF", "ES_NIE", "IT_FISCAL_CODE", "IT_IDENTITY_CARD", "IT_PASSPORT",
        "IT_DRIVER_LICENSE", "IN_AADHAAR", "IN_PAN", "IN_PASSPORT", "IN_VOTER", "SG_NRIC_FIN", "AU_TFN",
        "AU_MEDICARE", "PL_PESEL", "FI_PERSONAL_IDENTITY_CODE", "KR_RRN", "TH_TNIN", "TR_NATIONAL_ID",
        "ZA_ID_NUMBER", "ZA_PASSPORT", "NG_NIN", "SE_PERSONNUMMER", "DE_TAX_ID", "CA_SIN",
    )},
}


class PresidioDetector:
    """Presidio's analyzer behind the ``PIIDetector.find`` interface (spans in our categories)."""

    def __init__(self, categories: tuple[str, ...], min_score: float = 0.4):
        self.categories = frozenset(categories)
        self.min_score = min_score
        self._analyzer = None

    def _build(self):
        try:
            import spacy
            import tldextract
            import tldextract.tldextract as tld_module
            from presidio_analyzer import AnalyzerEngine, PatternRecognizer, RecognizerRegistry
            from presidio_analyzer import predefined_recognizers as predefined
            from presidio_analyzer.nlp_engine import SpacyNlpEngine
        except ImportError as exc:
            raise ImportError("pii engine 'presidio' needs presidio-analyzer: pip install 'corpusforge[presidio]'") from exc

        tld_module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())  # the bundled snapshot, offline

        class BlankSpacyNlpEngine(SpacyNlpEngine):
            """Presidio's spaCy engine over ``spacy.blank``: tokens, no model, no download."""

            def load(self) -> None:
                self.nlp = {m["lang_code"]: spacy.blank(m["lang_code"]) for m in self.models}

        nlp = BlankSpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank:en"}])
        nlp.load()
        registry = RecognizerRegistry(supported_languages=["en"])
        for name in sorted(dir(predefined)):
            cls = getattr(predefined, name)
            if not (inspect.isclass(cls) and issubclass(cls, PatternRecognizer) and cls is not PatternRecognizer):
                continue
            try:
                recognizer = cls(supported_language="en")
            except TypeError:
                continue  # a recognizer that takes other arguments (none of the pattern ones today)
            if any(e in ENTITY_CATEGORY for e in recognizer.supported_entities):
                registry.add_recognizer(recognizer)
        registry.add_recognizer(predefined.PhoneRecognizer(supported_language="en"))  # phonenumbers, not a pattern
        return AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])

    def find(self, text: str, language: str | None = None) -> list[Span]:
        """Non-overlapping spans in text order, each a Presidio result of ``min_score`` or more."""
        from corpusforge.privacy.pii import resolve_overlaps

        if self._analyzer is None:
            self._analyzer = self._build()
        entities = [e for e, c in ENTITY_CATEGORY.items() if c in self.categories]
        spans = []
        for r in self._analyzer.analyze(text=text, language="en", entities=entities, score_threshold=self.min_score):
            category = ENTITY_CATEGORY[r.entity_type]
            value = text[r.start:r.end]
            label = r.entity_type if category == "national_id" else category.upper()
            spans.append(Span(r.start, r.end, category, label, value.lower() if category == "email" else value))
        return resolve_overlaps(spans) if len(spans) > 1 else spans

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_analyzer": None}  # built again in each worker process
