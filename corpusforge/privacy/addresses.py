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
    "Trunkway|Villas|Wade|Walkway|Wynd"
)
# Each pattern starts with a character class or literal words and no \b, so that the regex engine
# can skip ahead to possible first characters (a leading \b or optional group disables that and
# made addresses the slowest detector); the word boundary before a match is checked afterwards.
_ADDRESSES = (
    # en: 123 Main Street [Apt./Suite 4]  (US, CA, AU, UK, IN)
    re.compile(r"\d{1,5}[A-Za-z]?,? (?:[A-Z][a-z'’.-]+ ){1,3}(?:" + _EN_SUFFIX + r")s?\b\.?"
               r"(?:,? (?:Apt\.|Suite|Unit|Ste\.?|Flat) \d{1,5})?"),
    # fr: 12, rue de la Paix / 12 bis avenue Foch
    re.compile(r"\d{1,4}(?: ?(?:bis|ter))?,? (?i:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|"
               r"route|cours|square|passage|faubourg) (?:[\w'’-]+ ){0,4}[A-ZÉÈ][\w'’-]+"),
    # es/it/pt: Calle Mayor 5 / Via Roma, 12 / Rua Augusta, 100
    re.compile(r"(?:Calle|C/|Avenida|Avda\.|Av\.|Paseo|Plaza|Camino|Carrer|Ronda|Travesía|Alameda|Callejón|"
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
)
# de/nl/sv/da/no: Goethestraße 12a / Keizersgracht 123 / Nygränd 4 — a capitalised word and a
# number, kept when the word ends in a street word (checked with str.endswith, not in the regex).
_COMPOUND_STREET = re.compile(r"[A-ZÄÖÜÅØÆ][\wäöüßåøæé-]* \d{1,4}(?:[a-zA-Z]|-\d{1,4}|/\d{1,4})?\b")
_STREET_ENDINGS = (
    "straße", "strasse", "str.", "weg", "platz", "allee", "gasse", "damm", "ufer", "straat", "laan", "plein",
    "gracht", "kade", "singel", "steeg", "dreef", "gatan", "gata", "vägen", "gränd", "gade", "vej", "veien",
    "stien", "torget", "plass", "stigen", "backen", "allén", "platsen", "leden", "slingan", "hof", "pad", "baan",
    "dijk", "markt", "boulevard",
)
# What may precede a match and belongs to the address: "Suite 905 1 Brown Corner", "Studio 68p, ...",
# "Wally-auch Schlauchin-Straße 3".
_ADDRESS_LEAD = re.compile(r"(?:(?:Suite|Apt\.|Unit|Level|Flat) \d{1,5}[A-Za-z]?,? |(?:Studio|Flat|Apartment|Unit|Suite) |"
                           r"[A-ZÄÖÜ][\wäöüß]*-[\wäöüß-]+ )$")


def _compound_streets(text: str) -> Iterator[re.Match[str]]:
    for m in _COMPOUND_STREET.finditer(text):
        if m.group().split(" ", 1)[0].lower().endswith(_STREET_ENDINGS):
            yield m


def find_addresses(text: str) -> Iterator[Span]:
    for matches in [rx.finditer(text) for rx in _ADDRESSES] + [_compound_streets(text)]:
        for m in matches:
            start = m.start()
            if start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                continue  # not at a word boundary
            lead = _ADDRESS_LEAD.search(text, max(0, start - 24), start)
            if lead is not None and (lead.start() == 0 or not text[lead.start() - 1].isalnum()):
                start = lead.start()
            yield Span(start, m.end(), "address", "ADDRESS", text[start:m.end()])
