"""The shop's vocabulary: categories, product types, attributes, options, brands.

WebShop scraped 1.18M Amazon products from five categories (beauty, food, fashion, furniture,
electronics). We cannot ship that data, so the catalog generator (`catalog.py`) draws products
from these hand-written tables instead. Each product type sits in a category path
``category > subcategory > type`` (WebShop's ``product_category``), the category owns a pool of
attributes (WebShop's ``Attributes``, mined from reviews there) and two option kinds (WebShop's
``options``, e.g. colour and size) whose values a buyer must pick on the item page.

Editing these tables changes the catalog, and the cache key (`world_fingerprint`) with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["Category", "CATEGORIES", "BRANDS", "world_fingerprint"]


@dataclass(frozen=True)
class Category:
    name: str
    attributes: tuple[str, ...]  # the pool products draw attributes from
    option_kinds: tuple[str, str]  # e.g. ("color", "size")
    option_values: tuple[tuple[str, ...], tuple[str, ...]]  # values of each kind, <= 32 each
    styles: tuple[str, ...]  # a word in the title, not in instructions
    subcategories: tuple[tuple[str, float, tuple[str, ...]], ...]  # (name, base price, types)


CATEGORIES: tuple[Category, ...] = (
    Category(
        name="beauty & personal care",
        attributes=(
            "long lasting",
            "paraben free",
            "cruelty free",
            "sulfate free",
            "fragrance free",
            "travel size",
            "easy to apply",
            "dermatologist tested",
            "alcohol free",
            "vegan",
            "oil free",
            "non toxic",
            "natural ingredients",
            "sensitive skin",
            "water resistant",
            "hypoallergenic",
        ),
        option_kinds=("scent", "size"),
        option_values=(
            (
                "lavender",
                "rose",
                "vanilla",
                "citrus",
                "unscented",
                "coconut",
                "mint",
                "jasmine",
                "sandalwood",
                "green tea",
                "cucumber",
                "eucalyptus",
            ),
            (
                "1 fl oz",
                "1.7 fl oz",
                "3.4 fl oz",
                "6.7 fl oz",
                "8 fl oz",
                "12 fl oz",
                "16 fl oz",
                "32 fl oz",
            ),
        ),
        styles=("gentle", "daily", "professional", "salon", "classic", "advanced"),
        subcategories=(
            (
                "hair care",
                14.0,
                (
                    "shampoo",
                    "conditioner",
                    "hair oil",
                    "hair mask",
                    "dry shampoo",
                    "hair spray",
                    "curl cream",
                ),
            ),
            (
                "skin care",
                18.0,
                (
                    "face moisturizer",
                    "face serum",
                    "eye cream",
                    "body lotion",
                    "sunscreen",
                    "face wash",
                    "toner",
                    "lip balm",
                ),
            ),
            (
                "makeup",
                12.0,
                (
                    "foundation",
                    "mascara",
                    "eyeliner",
                    "lipstick",
                    "concealer",
                    "blush",
                    "eyeshadow palette",
                    "setting powder",
                ),
            ),
            ("fragrance", 35.0, ("eau de parfum", "body mist", "cologne", "perfume oil")),
            (
                "bath & body",
                9.0,
                ("body wash", "bath bomb", "hand soap", "body scrub", "deodorant", "hand cream"),
            ),
        ),
    ),
    Category(
        name="grocery & gourmet food",
        attributes=(
            "gluten free",
            "low sugar",
            "sugar free",
            "non gmo",
            "keto friendly",
            "high protein",
            "low calorie",
            "organic",
            "dairy free",
            "kosher",
            "whole grain",
            "low sodium",
            "caffeine free",
            "nut free",
            "plant based",
            "no artificial flavors",
        ),
        option_kinds=("flavor", "size"),
        option_values=(
            (
                "chocolate",
                "peanut butter",
                "sea salt",
                "honey",
                "strawberry",
                "original",
                "cinnamon",
                "blueberry",
                "caramel",
                "lemon",
                "barbecue",
                "sour cream and onion",
            ),
            (
                "pack of 1",
                "pack of 2",
                "pack of 3",
                "pack of 4",
                "pack of 6",
                "pack of 8",
                "pack of 12",
                "pack of 24",
            ),
        ),
        styles=("artisan", "homestyle", "gourmet", "family", "classic", "snack size"),
        subcategories=(
            (
                "snacks",
                8.0,
                (
                    "snack bar",
                    "potato chips",
                    "trail mix",
                    "beef jerky",
                    "crackers",
                    "popcorn",
                    "pretzels",
                    "rice cakes",
                ),
            ),
            (
                "beverages",
                10.0,
                (
                    "green tea",
                    "ground coffee",
                    "sparkling water",
                    "sports drink",
                    "hot cocoa mix",
                    "herbal tea",
                    "energy drink",
                ),
            ),
            (
                "pantry staples",
                7.0,
                (
                    "pasta sauce",
                    "olive oil",
                    "peanut spread",
                    "maple syrup",
                    "spice blend",
                    "salad dressing",
                    "baking mix",
                ),
            ),
            (
                "breakfast foods",
                6.0,
                ("granola", "oatmeal", "pancake mix", "breakfast cereal", "protein powder"),
            ),
            (
                "candy & sweets",
                6.0,
                ("gummy candy", "dark chocolate", "hard candy", "cookies", "fruit snacks"),
            ),
        ),
    ),
    Category(
        name="clothing, shoes & jewelry",
        attributes=(
            "machine wash",
            "quick dry",
            "slim fit",
            "relaxed fit",
            "moisture wicking",
            "button closure",
            "elastic waist",
            "long sleeve",
            "short sleeve",
            "breathable",
            "non slip",
            "lightweight",
            "water resistant",
            "stretch fabric",
            "cotton blend",
            "wrinkle free",
        ),
        option_kinds=("color", "size"),
        option_values=(
            (
                "black",
                "white",
                "navy blue",
                "red",
                "heather grey",
                "beige",
                "olive green",
                "burgundy",
                "pink",
                "khaki",
                "light blue",
                "brown",
            ),
            ("x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large", "4x-large"),
        ),
        styles=("casual", "athletic", "vintage", "everyday", "outdoor", "classic"),
        subcategories=(
            (
                "men's clothing",
                28.0,
                (
                    "polo shirt",
                    "dress shirt",
                    "cargo pants",
                    "hoodie",
                    "swim trunks",
                    "rain jacket",
                    "chino shorts",
                ),
            ),
            (
                "women's clothing",
                30.0,
                (
                    "maxi dress",
                    "yoga pants",
                    "cardigan sweater",
                    "denim jacket",
                    "blouse",
                    "pajama set",
                    "tank top",
                ),
            ),
            (
                "shoes",
                45.0,
                ("running shoes", "hiking boots", "sandals", "slippers", "loafers", "rain boots"),
            ),
            (
                "accessories",
                18.0,
                (
                    "baseball cap",
                    "winter gloves",
                    "leather belt",
                    "crossbody bag",
                    "wool scarf",
                    "backpack",
                ),
            ),
            (
                "jewelry",
                25.0,
                ("pendant necklace", "stud earrings", "charm bracelet", "wrist watch"),
            ),
        ),
    ),
    Category(
        name="home & kitchen",
        attributes=(
            "easy to clean",
            "easy to assemble",
            "space saving",
            "solid wood",
            "storage space",
            "heavy duty",
            "living room",
            "dining room",
            "bedroom",
            "dishwasher safe",
            "non stick",
            "bpa free",
            "stainless steel",
            "mid century",
            "eco friendly",
            "rust resistant",
        ),
        option_kinds=("finish", "dimensions"),
        option_values=(
            (
                "walnut",
                "oak",
                "espresso",
                "matte black",
                "ivory",
                "charcoal",
                "natural wood",
                "slate grey",
                "cherry",
                "teal",
                "gold",
                "silver",
            ),
            (
                "18 inch",
                "24 inch",
                "30 inch",
                "36 inch",
                "42 inch",
                "48 inch",
                "60 inch",
                "72 inch",
            ),
        ),
        styles=("modern", "rustic", "farmhouse", "industrial", "minimalist", "contemporary"),
        subcategories=(
            (
                "furniture",
                120.0,
                (
                    "coffee table",
                    "bookshelf",
                    "office chair",
                    "bar stool",
                    "nightstand",
                    "tv stand",
                    "accent chair",
                    "storage ottoman",
                ),
            ),
            (
                "kitchen & dining",
                30.0,
                (
                    "frying pan",
                    "knife set",
                    "cutting board",
                    "food storage containers",
                    "dinnerware set",
                    "mixing bowls",
                    "water bottle",
                ),
            ),
            (
                "bedding",
                45.0,
                ("comforter set", "bed sheets", "throw blanket", "pillow", "mattress topper"),
            ),
            (
                "home decor",
                25.0,
                (
                    "wall mirror",
                    "area rug",
                    "table lamp",
                    "window curtains",
                    "picture frame",
                    "wall clock",
                ),
            ),
            (
                "storage & organization",
                22.0,
                ("shoe rack", "laundry basket", "closet organizer", "floating shelves"),
            ),
        ),
    ),
    Category(
        name="electronics",
        attributes=(
            "fast charging",
            "noise cancelling",
            "wireless bluetooth",
            "long battery life",
            "high definition",
            "usb c",
            "easy to carry",
            "waterproof",
            "plug and play",
            "touch control",
            "built in microphone",
            "dual band",
            "low latency",
            "compact design",
            "high speed",
            "shockproof",
        ),
        option_kinds=("color", "capacity"),
        option_values=(
            (
                "jet black",
                "pearl white",
                "space gray",
                "midnight blue",
                "rose gold",
                "forest green",
                "coral",
                "lavender purple",
                "sky blue",
                "graphite",
                "champagne",
                "crimson",
            ),
            ("16gb", "32gb", "64gb", "128gb", "256gb", "512gb", "1tb", "2tb"),
        ),
        styles=("portable", "smart", "premium", "ultra", "mini", "pro"),
        subcategories=(
            (
                "audio",
                40.0,
                (
                    "wireless earbuds",
                    "over ear headphones",
                    "bluetooth speaker",
                    "soundbar",
                    "turntable",
                ),
            ),
            (
                "computer accessories",
                25.0,
                (
                    "wireless mouse",
                    "mechanical keyboard",
                    "usb hub",
                    "laptop stand",
                    "webcam",
                    "external hard drive",
                    "flash drive",
                ),
            ),
            (
                "phone accessories",
                15.0,
                (
                    "phone case",
                    "screen protector",
                    "power bank",
                    "charging cable",
                    "car mount",
                    "wall charger",
                ),
            ),
            (
                "cameras",
                90.0,
                ("action camera", "security camera", "ring light", "tripod", "dash cam"),
            ),
            (
                "tv & video",
                80.0,
                ("streaming stick", "projector", "hdmi cable", "tv wall mount", "universal remote"),
            ),
        ),
    ),
)

_SYLLABLES = (
    "ka",
    "lo",
    "ven",
    "tri",
    "mar",
    "zen",
    "qui",
    "ro",
    "sol",
    "na",
    "pex",
    "dor",
    "lu",
    "fi",
    "ber",
    "gal",
)
#: 256 made-up brand names ("Kalo", "Venmar", ...), so titles carry a brand as on Amazon.
BRANDS: tuple[str, ...] = tuple((a + b).capitalize() for a in _SYLLABLES for b in _SYLLABLES)


def world_fingerprint() -> str:
    """A short hash of every table above; part of the catalog cache key."""
    return hashlib.sha256(repr((CATEGORIES, BRANDS)).encode()).hexdigest()[:12]
