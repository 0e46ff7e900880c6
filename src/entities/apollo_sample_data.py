"""Reference data for the synthetic Apollo exports of ``entities.apollo_sample``.

Apollo's 25 export columns, and the fixed pools the generator draws from: label
halves and suffixes for company domains, person names (with ASCII spellings for
e-mail addresses and LinkedIn slugs), titles, industries, places, and the shapes
in which real exports write websites and LinkedIn URLs. The pools keep their
leading underscore: only the generator reads them.
"""

from __future__ import annotations

from typing import Final

APOLLO_HEADERS: Final[tuple[str, ...]] = (
    "First Name",
    "Last Name",
    "Title",
    "Company",
    "Company Name for Emails",
    "Email",
    "Email Status",
    "Seniority",
    "Departments",
    "Contact Owner",
    "First Phone",
    "Work Direct Phone",
    "Mobile Phone",
    "Corporate Phone",
    "# Employees",
    "Industry",
    "Keywords",
    "Person Linkedin Url",
    "Website",
    "Company Linkedin Url",
    "Facebook Url",
    "Twitter Url",
    "City",
    "State",
    "Country",
)

# Label halves for company domains; every concatenation is distinct (asserted
# below), which is what makes every company's domain distinct.
_PREFIXES: Final = (
    "bright", "north", "blue", "iron", "silver", "quantum", "clear", "swift", "green",
    "stone", "cloud", "pixel", "river", "summit", "atlas", "nova", "vertex", "lumen",
    "cobalt", "ember", "harbor", "maple", "orbit", "pine", "polar", "prairie", "signal",
    "solar", "spark", "terra", "tidal", "zenith", "alpine", "amber", "aspen", "beacon",
    "cedar", "coral", "delta", "falcon", "granite", "helix", "indigo", "juniper",
    "kestrel", "lattice", "meadow", "nimbus", "onyx", "quill",
)  # fmt: skip
_SUFFIXES: Final = (
    "forge", "labs", "works", "soft", "logic", "scale", "stack", "ware", "metrics",
    "flow", "grid", "point", "path", "bridge", "wave", "field", "link", "base", "craft",
    "mind", "hub", "systems", "analytics", "health", "capital", "robotics", "energy",
    "foods", "logistics", "media", "security", "studio", "ventures", "dynamics",
    "networks", "bio", "cart", "desk", "pay", "sense",
)  # fmt: skip
_COMBOS: Final = tuple(dict.fromkeys(p + s for p in _PREFIXES for s in _SUFFIXES))
# Odd and coprime with len(_COMBOS), so i -> i * step is a permutation and early
# companies do not all share a prefix.
_COMBO_STEP: Final = 7919
assert len(_COMBOS) == len(_PREFIXES) * len(_SUFFIXES), "label halves must not be ambiguous"

# (suffix, weight). Multi-label public suffixes exercise the PSL.
_TLDS: Final = (
    ("com", 40), ("io", 8), ("co", 4), ("net", 4), ("org", 3), ("ai", 3), ("de", 5),
    ("fr", 3), ("nl", 2), ("ca", 2), ("es", 2), ("it", 2), ("se", 1), ("co.uk", 8),
    ("com.au", 4), ("com.br", 2), ("co.nz", 1), ("co.jp", 1),
)  # fmt: skip
_TLD_TABLE: Final = tuple(tld for tld, weight in _TLDS for _ in range(weight))
# Prepended to the label of roughly 1 company in 30 to produce IDN domains.
_IDN_PREFIXES: Final = ("müller", "bücher", "straße", "café", "søren", "åkers", "niño", "größe")
_COMPANY_FORMS: Final = ("{}", "{}", "{}", "{} Inc.", "{}, Inc.", "{} Ltd", "{} GmbH", "{} LLC")

_FIRST_NAMES: Final = (
    ("José", "jose"), ("Zoë", "zoe"), ("伟", "wei"), ("François", "francois"),
    ("Søren", "soren"), ("Łukasz", "lukasz"), ("Chloé", "chloe"), ("Siobhán", "siobhan"),
    ("John", "john"), ("Emily", "emily"), ("Michael", "michael"), ("Sarah", "sarah"),
    ("David", "david"), ("Priya", "priya"), ("Aarav", "aarav"), ("Mohammed", "mohammed"),
    ("Olivia", "olivia"), ("Liam", "liam"), ("Emma", "emma"), ("Noah", "noah"),
    ("Ana", "ana"), ("Lucas", "lucas"), ("Mia", "mia"), ("Jean-Luc", "jeanluc"),
    ("Hannah", "hannah"), ("Kenji", "kenji"), ("Fatima", "fatima"), ("Carlos", "carlos"),
)  # fmt: skip
_LAST_NAMES: Final = (
    ("García", "garcia"), ("Müller", "muller"), ("李", "li"), ("O'Brien", "obrien"),
    ("Nguyễn", "nguyen"), ("Øvergaard", "overgaard"), ("van der Berg", "vanderberg"),
    ("Smith", "smith"), ("Johnson", "johnson"), ("Williams", "williams"), ("Brown", "brown"),
    ("Patel", "patel"), ("Kowalski", "kowalski"), ("Dubois", "dubois"), ("Rossi", "rossi"),
    ("Silva", "silva"), ("Tanaka", "tanaka"), ("Kim", "kim"), ("Schmidt", "schmidt"),
    ("Martin", "martin"), ("Khan", "khan"), ("Lopez", "lopez"), ("Andersen", "andersen"),
)  # fmt: skip
_TITLES: Final = (
    ("VP, Sales", "Vp", "Master Sales"),
    ("Head of Growth", "Head", "Marketing"),
    ("Chief Executive Officer", "C suite", "C-Suite"),
    ("Director, Engineering", "Director", "Engineering & Technical"),
    ("Software Engineer", "Senior", "Engineering & Technical"),
    ("Account Executive", "Entry", "Master Sales, Sales Operations"),
    ("Founder & CEO", "Founder", "C-Suite"),
    ("Marketing Manager", "Manager", "Marketing"),
    ("CTO", "C suite", "C-Suite, Engineering & Technical"),
    ("Sr. Product Manager", "Senior", "Product Management"),
    ("Head of People, EMEA", "Head", "Human Resources"),
    ("Directeur Général", "C suite", "C-Suite"),
    ("Geschäftsführer", "Owner", "C-Suite"),
    ("Revenue Operations Lead", "Manager", "Operations"),
)
_INDUSTRIES: Final = (
    "information technology & services", "computer software", "financial services",
    "marketing & advertising", "hospital & health care", "logistics & supply chain",
    "renewables & environment", "food & beverages", "internet", "e-learning",
)  # fmt: skip
_KEYWORDS: Final = (
    "saas", "b2b", "fintech", "payments", "machine learning", "analytics", "healthtech",
    "e-commerce", "cybersecurity", "developer tools", "logistics", "climate",
)  # fmt: skip
_LOCATIONS: Final = (
    ("San Francisco", "California", "United States"),
    ("New York", "New York", "United States"),
    ("Austin", "Texas", "United States"),
    ("London", "England", "United Kingdom"),
    ("München", "Bavaria", "Germany"),
    ("Paris", "Île-de-France", "France"),
    ("Sydney", "New South Wales", "Australia"),
    ("São Paulo", "São Paulo", "Brazil"),
    ("Toronto", "Ontario", "Canada"),
    ("Amsterdam", "North Holland", "Netherlands"),
    ("Tokyo", "Tokyo", "Japan"),
    ("", "", "United States"),
)
_FREEMAIL: Final = ("gmail.com", "yahoo.com", "hotmail.co.uk", "outlook.com", "gmx.de", "web.de")
# Website shapes seen in real exports; "{d}" is the host (possibly Unicode).
_WEBSITE_SHAPES: Final = (
    "http://www.{d}",
    "http://www.{d}",
    "{d}",
    "https://{d}",
    "https://www.{d}/",
    "HTTPS://WWW.{D}/en-us",
    "http://{d}/?utm_source=apollo&utm_medium=export",
    "https://{d}:443/about",
    "{d}.",
    "www.{d}/",
    "  https://{d}  ",
    "https://blog.{d}",
    "careers.{d}/jobs",
    "//{d}",
    "https://{d}#contact",
    "Http://Www.{d}",
)
_LINKEDIN_SHAPES: Final = (
    "http://www.linkedin.com/in/{s}",
    "http://www.linkedin.com/in/{s}",
    "https://www.linkedin.com/in/{s}/",
    "linkedin.com/in/{s}",
    "https://uk.linkedin.com/in/{s}?trk=public_profile_browsemap",
    "https://www.linkedin.com/in/{s}/details/experience/",
    "www.linkedin.com/in/{s}",
)
