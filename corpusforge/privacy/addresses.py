"""Street addresses, best effort: house-number and street-type patterns of several locales.

English (USPS, Royal Mail and Australia Post street types), French, German/Dutch/Nordic compound
street names, Spanish/Italian/Portuguese street-type-first forms and Polish. A street without a
house number is not matched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from corpusforge.privacy.detectors import Span

# USPS Publication 28 suffixes (the common ones) for US/CA/AU/UK-style "123 Main Street".
_EN_SUFFIX = (
    "Ramble|Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Circle|"
    "Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Crescent|Close|Grove|Gardens|Row|Walk|Hill|Hills|"
    "Park|Green|Mews|Rise|Vale|View|Alley|Annex|Arcade|Bay|Bend|Bluff|Bluffs|Branch|Bridge|Brook|Brooks|"
    "Burg|Burgs|Bypass|Camp|Canyon|Cape|Causeway|Center|Centers|Cliff|Cliffs|Club|Common|Commons|Corner|"
    "Corners|Course|Courts|Cove|Coves|Creek|Crest|Crossing|Crossroad|Curve|Dale|Dam|Divide|Drives|Estate|"
    "Estates|Expressway|Extension|Extensions|Falls|Ferry|Field|Fields|Flat|Flats|Ford|Fords|Forest|Forge|"
    "Forges|Fork|Forks|Fort|Freeway|Garden|Gateway|Glen|Glens|Greens|Groves|Harbor|Harbors|Haven|Heights|"
    "Hollow|Inlet|Island|Islands|Isle|Junction|Junctions|Key|Keys|Knoll|Knolls|Lake|Lakes|Land|Landing|"
    "Light|Lights|Loaf|Lock|Locks|Lodge|Loop|Mall|Manor|Manors|Meadow|Meadows|Mill|Mills|Mission|Motorway|"
    "Mount|Mountain|Mountains|Neck|Orchard|Oval|Overpass|Parks|Parkways|Pass|Passage|Path|Pike|Pine|Pines|"
    "Plain|Plains|Plaza|Point|Points|Port|Ports|Prairie|Radial|Ramp|Ranch|Rapid|Rapids|Rest|Ridge|Ridges|"
    "River|Roads|Route|Shoal|Shoals|Shore|Shores|Skyway|Spring|Springs|Spur|Spurs|Squares|Station|Stravenue|"
    "Stream|Streets|Summit|Throughway|Trace|Track|Trafficway|Tunnel|Turnpike|Underpass|Union|Unions|Valley|"
    "Valleys|Viaduct|Views|Village|Villages|Ville|Vista|Walks|Wall|Ways|Well|Wells|Triangle|Chase|Parade|Esplanade|"
    # Australia Post / Royal Mail street types (the generic English words among them are left out)
    "Access|Alleyway|Amble|Anchorage|Approach|Artery|Basin|Brace|Brae|Broadway|Brow|Byway|Centre|Centreway|"
    "Circlet|Circuit|Circus|Colonnade|Concourse|Copse|Corso|Courtyard|Crossway|Cruiseway|Cul-de-sac|Cutting|"
    "Dell|Deviation|Distributor|Driveway|Entrance|Fairway|Firetrail|Footway|Foreshore|Frontage|Gate|Gates|"
    "Glade|Grange|Gully|Highroad|Interchange|Intersection|Laneway|Lees|Lookout|Meander|Mew|Nook|Outlook|"
    "Parklands|Pathway|Piazza|Plateau|Pocket|Promenade|Quad|Quadrangle|Quadrant|Quay|Quays|Ridgeway|Riverway|"
    "Riviera|Roadside|Roadway|Ronde|Rosebowl|Rotary|Siding|Slope|Strand|Tarn|Thoroughfare|Tollway|Tor|"
    "Trunkway|Villas|Wade|Walkway|Wynd|"
    # India Post: the street and locality words of Indian addresses
    "Nagar|Chowk|Marg|Ganj|Colony|Bazar|Bazaar|Vihar|Enclave|Layout|Puram|Zila|"
    # Australia Post street types that are also plain words, safe after a capitalised name
    "Range|Cross|Gap|Elbow|Dip|Break|Via|Subway|Block"
)
_FR_TYPES = ("rue|avenue|av\\.|boulevard|bd|place|chemin|allée|impasse|quai|route|cours|square|passage|faubourg|"
             "rang|montée|côte|ruelle|sentier|parvis|rond-point")
# Type first, number after: only words that are not also English ("took place on June 8", "Route 29").
_FR_TYPES_FIRST = "rue|avenue|boulevard|bd|chemin|allée|impasse|quai|ruelle|sentier|montée|rang|faubourg"
# Each pattern starts with a character class or literal words and no \b, so that the regex engine
# can skip ahead to possible first characters (a leading \b or optional group disables that and
# made addresses the slowest detector); the word boundary before a match is checked afterwards.
_ADDRESSES = (
    # en: 123 Main Street [Apt./Suite 4]  (US, CA, AU, UK, IN)
    re.compile(r"\d{1,5}(?:/\d{1,5})?[A-Za-z]?,? (?:(?:Ma?c|O['’])?[A-Z][a-z'’.-]+ ){1,3}(?:" + _EN_SUFFIX + r")s?\b\.?"
               r"(?:,? (?:Apt\.|Suite|Unit|Ste\.?|Flat) \d{1,5})?"),
    # fr: 12, rue de la Paix / 12 bis avenue Foch
    re.compile(r"\d{1,5}(?: ?(?:bis|ter))?,? (?i:" + _FR_TYPES + r") (?:[\w'’-]+ ){0,4}[A-ZÉÈ][\w'’-]+"
               r"(?:,? (?:Suite|Apt\.|app\.|bureau|unité) \d{1,5})?"),
    # fr (BE, CH, Québec): rue du Lac 12 / chemin de Cretton 3 — type first, number after
    re.compile(r"(?i:" + _FR_TYPES_FIRST + r") (?:[\w'’-]+ ){0,3}?[A-ZÉÈ][\w'’-]+,? \d{1,4}(?: ?(?:bis|ter)|[a-z])?\b"),
    # es/it/pt: Calle Mayor 5 / Via Roma, 12 / Rua Augusta, 100
    re.compile(r"(?:Calle|C/|C\. del?|R\.|Av|Avenida|Avda\.|Av\.|Paseo|Plaza|Camino|Carrer|Ronda|Travesía|Alameda|Callejón|"
               r"Cerrada|Andador|Calzada|Circuito|Prolongación|Privada|Retorno|Via|Viale|Piazza|Piazzale|Corso|"
               r"Largo|Vicolo|Contrada|Borgo|Strada|Rotonda|Rua|Travessa|Praça|Rodovia|Estrada|Ladeira|Vereda|"
               r"Recanto|Quadra|Lago|Setor|Conjunto|Esplanada|Pátio|Aeroporto|Área|Chácara|Colônia|Condomínio|"
               r"Favela|Feira|Jardim|Loteamento|Morro|Núcleo|Parque|Passarela|Residencial|Sítio|Trecho|Trevo|"
               r"Vale|Viela|Vila|Distrito|Campo|Fazenda|Viaduto|Estação|Avenue|Canale|Incrocio|Diagonal|Eje vial|"
               r"Periférico|Boulevard|Continuación|Pasaje|Peatonal|Corredor|Cuesta|Glorieta|Urbanización|Vía|"
               r"Rambla|Acceso|Ulica|Ampliación|Circunvalación|Pasadizo|Vial|Cañada|Stretto|Lagoa|Praia|Camí|"
               r"Passeig|Plaça|Travessera) "
               r"(?:[\w'’.-]+ ){0,4}?[\w'’.-]+,? (?:n\.? ?)?\d{1,5}\b"
               r"(?: ?,? (?:Apt\.|Piso|Depto\.|Edif\.|Puerta|Casa|Bloco|Sala|Lote|Interior|Int\.|Piano|Appartamento|"
               r"Interno|Scala) ?\d{1,5}\b)*"),
    # pl: ul. Długa 5 / al. Jerozolimskie 12 / pl. Bolesława Krzywoustego 86/83
    re.compile(r"(?:ul\.|al\.|pl\.|os\.|ulica|aleja|plac|osiedle) (?:[\w'’.-]+ ){0,3}?[\w'’.-]+ \d{1,4}(?:/\d{1,4})?\b"),
    # ru/uk: ул. Разина, д. 1/8 к. 4 / вул. Шевченка, буд. 12 — the house word (д., буд.) is required
    re.compile(r"(?:ул\.|улица|пр\.|просп\.|проспект|пер\.|переулок|наб\.|набережная|ш\.|шоссе|бул\.|бульвар|"
               r"пл\.|площадь|вул\.|вулиця|пров\.|провулок|бульв\.|парк|майдан|алея|площа|сквер|узвіз|набережна) (?:[\w.'’-]+ ){0,6}?[\w.'’-]+,? "
               r"(?:д\.|дом|буд\.) ?\d{1,4}(?:/\d{1,4})?[а-яА-Я]?(?:,? (?:к\.|корп\.|стр\.|кв\.) ?\d{1,4})*"),
    # hu: Kossuth Lajos utca 12. / Széchenyi tér 3
    re.compile(r"[A-ZÁÉÍÓÖŐÚÜŰ][\wáéíóöőúüű-]*(?: [\wáéíóöőúüű-]+){0,2} (?:utca|út|útja|tér|tere|körút|köz|sor|"
               r"sétány|rakpart|fasor|u\.) \d{1,4}\b\.?"),
    # ro: Strada Mihai Eminescu nr. 5 / Bulevardul Unirii Nr. 17
    re.compile(r"(?:Strada|Str\.|Bulevardul|Bd\.|B-dul|Calea|Aleea|Șoseaua|Şoseaua|Soseaua|Splaiul|Piața|Intrarea|Drumul) "
               r"(?:[\w'’.-]+ ){0,3}?[\w'’.-]+,? (?i:nr\.?) ?\d{1,4}\b(?: +(?:Bl\.|Sc\.|Ap\.|Et\.) ?\d{1,4}\b)*"),
    # tr: Atatürk Cad. No: 12 / Gül Sokak No 5
    re.compile(r"[A-ZÇĞİÖŞÜ][\wçğıöşü]*(?: [\wçğıöşü]+){0,2} (?:Caddesi|Cad\.|Sokak|Sokağı|Sk\.|Bulvarı|Blv\.),? "
               r"(?:No|no)[:.]? ?\d{1,4}\b"),
    # ko: 압구정로 739 / 테헤란로12길 34 (road-name addresses); "으로" is a particle, not a road
    re.compile(r"[가-힣0-9]+(?<!으)(?:로|길|대로|거리) (?:지하)?\d{1,4}(?:-\d{1,4})?(?![\w-])(?: \([가-힣0-9]+\))?"),
    # zh/ja: 勝利路19號 / 中山路一段12巷3号 — the house-number character makes it an address
    re.compile(r"[\u4e00-\u9fff]{1,10}(?:路|街|大道|道|巷)(?:[一二三四五六七八九十\d]+段)?(?:\d+巷)?(?:\d+弄)?\d+[號号]"),
    # de/nl/da/sv/no with the street word apart: Lange Straße 5 / Sorø Allé 12 / Kongens gate 3
    re.compile(r"[A-ZÄÖÜÅØÆ][\wäöüßåøæé-]+(?: [A-ZÄÖÜÅØÆ][\wäöüßåøæé-]+){0,2} (?i:straße|strasse|str\.|weg|platz|allee|allé|gasse|ring|damm|ufer|vej|"
               r"gade|plads|torv|gata|gatan|vägen|gate|veien|vei|straat|laan|plein|gracht|kade|katu|tie|kuja) \d{1,4}"
               r"(?:[a-zA-Z]|-\d{1,4}|/\d{1,4})?\b"),
)
# Substring gates per pattern index above: a pattern that starts with a character class is tried
# at every capital letter or digit, so these run only when a word they need is in the text
# (the flag: compare with the lower-cased text).
_GATES: dict[int, tuple[tuple[str, ...], bool]] = {
    2: (tuple(f" {w} " for w in _FR_TYPES_FIRST.split("|")), True),
    5: (("д.", "дом", "буд."), False),
    6: ((" utca", " út", " tér", " tere", " körút", " köz ", " sor ", " sétány", " rakpart", " fasor", " u. "), False),
    7: (("nr", "Nr", "NR"), False),
    8: (("Cad", "Sok", "Sk.", "Bulvar", "Blv."), False),
    9: (("로 ", "길 ", "거리 "), False),
    10: (("号", "號"), False),
    11: ((" straße", " strasse", " str.", " weg ", " platz", " allee", " allé", " gasse", " ring ", " damm", " ufer",
          " vej ", " gade", " plads", " torv", " gata", " vägen", " gate ", " veien", " vei ", " straat", " laan",
          " plein", " gracht", " kade", " katu", " tie ", " kuja"), True),
}
assert len(_ADDRESSES) == 12


def _active_patterns(text: str) -> list[re.Pattern[str]]:
    """The ungated patterns, and the gated ones whose words occur in ``text``."""
    hay = " " + text
    low_hay: str | None = None
    out = []
    for i, rx in enumerate(_ADDRESSES):
        gate = _GATES.get(i)
        if gate is not None:
            words, low = gate
            if low and low_hay is None:
                low_hay = hay.lower()
            if not any(w in (low_hay if low else hay) for w in words):
                continue
        out.append(rx)
    return out


# de/nl/sv/da/no: Goethestraße 12a / Keizersgracht 123 / Nygränd 4 — a capitalised word and a
# number, kept when the word ends in a street word (checked with str.endswith, not in the regex).
_COMPOUND_STREET = re.compile(r"[A-ZÄÖÜÅØÆ][\wäöüßåøæé-]*\.? \d{1,4}(?:[a-zA-Z]|-\d{1,4}|/\d{1,4})?\b")
_STREET_ENDINGS = (
    "straße", "strasse", "str.", "weg", "platz", "allee", "gasse", "damm", "ufer", "straat", "laan", "plein",
    "gracht", "kade", "singel", "steeg", "dreef", "gatan", "gata", "vägen", "gränd", "gade", "vej", "veien",
    "stien", "torget", "plass", "stigen", "backen", "allén", "platsen", "leden", "slingan", "hof", "pad", "baan",
    "dijk", "markt", "boulevard", "ring", "chaussee", "steig", "stieg", "pfad", "zeile", "gürtel", "kai", "promenade",
    "bulevardi", "katu", "tie", "kuja", "polku", "kaari", "raitti", "tori", "väylä", "bakken", "svingen", "vegen",
    "stræde", "vænge", "stig", "backe", "ringen", "lei",
    # Norwegian street names end in the place word: Andersenplassen, Nielsenkroken, Hansenvollen
    "plassen", "alléen", "kroken", "stranda", "grenda", "bråten", "lunden", "vollen", "haugen", "jordet", "løkka",
    "tunet", "stykket", "holtet", "tjernet", "berget", "engen",
)
# Capitalised words that end in a street word without being one ("Spring 2020", "During 1990").
_NOT_STREETS = frozenset(("spring", "string", "during", "bring", "offspring", "wring", "sterling", "boring", "goring",
                          "ring", "weg", "tie", "kai", "stig", "hof", "pad", "baan", "markt", "kade", "damm"))
# What may precede a match and belongs to the address: "Suite 905 1 Brown Corner", "Studio 68p, ...",
# "Wally-auch Schlauchin-Straße 3".
_ADDRESS_LEAD = re.compile(r"(?:H\.No\. |(?:Suite|Apt\.|Unit|Level|Flat) \d{1,5}[A-Za-z]?,? |(?:Studio|Flat|Apartment|Unit|Suite) |"
                           r"[A-ZÄÖÜ][\wäöüß]*-[\wäöüß-]+ |(?:Store|Lille|Gamle|Nye|Ny|Sankt|Große|Kleine|Alte|Neue|Lange|Hohe) |"
                           r"(?:[가-힣]+(?:시|도|군|구|읍|면) ){1,3})$")


def _compound_streets(text: str) -> Iterator[re.Match[str]]:
    for m in _COMPOUND_STREET.finditer(text):
        word = m.group().split(" ", 1)[0].lower()
        if word.endswith(_STREET_ENDINGS) and word.rstrip(".") not in _NOT_STREETS and (
            "-" in word or not word.endswith(("ring", "tie")) or (word.endswith("ntie") and len(word) > 8)
            or (len(word) > 6 and word.endswith("ring") and word[-5] not in "aeiouyptbwhr")
        ):  # "Engineering 39", "String 4", "Herring 8", "Christie 12" are not streets;
            # "Kreusel-Ring 10", "Tijlring 7", "Mannerheimintie 5" are
            yield m


def find_addresses(text: str) -> Iterator[Span]:
    for matches in [rx.finditer(text) for rx in _active_patterns(text)] + [_compound_streets(text)]:
        for m in matches:
            start = m.start()
            if start and (text[start - 1].isalnum() or text[start - 1] in "_."):
                continue  # not at a word boundary ("D.C. on September 25" is no "C. de …" street)
            lead = _ADDRESS_LEAD.search(text, max(0, start - 32), start)
            if lead is not None and (lead.start() == 0 or not text[lead.start() - 1].isalnum()):
                start = lead.start()
            yield Span(start, m.end(), "address", "ADDRESS", text[start:m.end()])
