"""The fixed material the demo data set is drawn from: names, cities, messages, replies.

- Phones come from Ofcom's drama range for London, +44 20 7946 0000 to 0999: numbers set
  aside for fiction, so they can never be a real customer's. (The mobile drama range,
  07700 900xxx, is refused by phone validation, which knows it is fictional.)
- Everything is drawn with a fixed seed, so every load makes the same data set.
"""

from __future__ import annotations

from ..words import N_, said

PHONE_PREFIX = "+4420794"
PHONE_RANGE = range(60000, 61000)  # +44 20 7946 0000 … 0999
SEED = 20240601

CONTACT_COUNT = 150
DASH = "\N{EN DASH}"  # the typographic dash of the names; ruff flags the literal
SENDER_NAME = "Demo sender (dry run)"
RETAIL_LIST = f"Demo {DASH} Retail customers"
DUE_LIST = f"Demo {DASH} Payment due"
RETAIL_DESCRIPTION = "Sample customers from the demo data set (wabulk demo)."
DUE_DESCRIPTION = "Sample customers with an amount due, from the demo data set."
# A saved segment, so the Segments page shows an example: conditions on the sheet's
# columns (people.py gives every contact a city, those of the due list an amount due).
SEGMENT_NAME = f"Demo {DASH} Mumbai customers who owe over 1,000"
SEGMENT_DESCRIPTION = "An example segment from the demo data set: change it or make your own."
SEGMENT_TERMS = {
    "match": "all",
    "conditions": [
        {"field": "attribute", "key": "city", "op": "eq", "value": "Mumbai"},
        {"field": "attribute", "key": "due_amount", "op": "gt", "value": 1000},
    ],
}

FIRST_NAMES = (
    "Aarav", "Aditi", "Ananya", "Arjun", "Deepa", "Farhan", "Gauri", "Harish", "Ishaan",
    "Kavya", "Lakshmi", "Meera", "Mohan", "Neha", "Nikhil", "Pooja", "Priya", "Rahul",
    "Rajesh", "Ravi", "Rohan", "Sanjay", "Shreya", "Siddharth", "Sunita", "Tanvi", "Varun",
    "Vikram", "Zoya", "Imran", "Fatima", "Gurpreet", "Harpreet", "Joseph", "Mary", "Anil",
    "Maria", "James", "Olivia", "Liam", "Amara", "Chen", "Sofia", "Lucas", "Aisha", "Omar",
    "Yuki", "Daniel", "Grace", "Tomás",
)  # fmt: skip
LAST_NAMES = (
    "Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "Khan", "Singh", "Das", "Menon",
    "Joshi", "Kulkarni", "Banerjee", "Chopra", "Fernandes", "Mehta", "Rao", "Pillai",
    "Qureshi", "D'Souza", "Smith", "Okafor", "Wang", "García", "Müller", "Silva", "Brown",
    "Ahmed", "Tanaka", "Kowalski",
)  # fmt: skip
CITIES = (
    "Mumbai", "Pune", "Bengaluru", "Chennai", "Hyderabad", "Delhi", "Kolkata", "Jaipur",
    "Kochi", "Ahmedabad", "London", "Leicester",
)  # fmt: skip
TIERS = ("Gold", "Silver", "Regular", "Regular", "Regular")

# (name, body): placeholders fill from each contact; {a|b} picks one wording per message.
TEMPLATES = (
    (
        f"Demo {DASH} Festive offer",
        '{Hi|Hello|Namaste} {{ first_name | default("there") }}! 🪔 Our festive sale is on: '
        '{20%|25%} off everything at our {{ city | default("nearest") }} store until Sunday.\n'
        "Reply STOP to stop these messages.",
    ),
    (
        f"Demo {DASH} Payment reminder",
        'Dear {{ name | default("customer") }}, a gentle reminder that '
        '₹{{ due_amount | default("the balance") }} is due on your account. '
        "{Please pay at your convenience|You can pay at the counter or online}. Thank you!",
    ),
    (
        f"Demo {DASH} New arrivals",
        '{Hey|Hi} {{ first_name | default("there") }}, new arrivals just landed in '
        '{{ city | default("our stores") }}! {Come and take a look|Drop by this week} 🛍️',
    ),
)

# Finished campaigns: (name, template index, lists ("retail", "due"), days ago, start hour UTC).
HISTORY = (
    ("Demo: Festive offer", 0, ("retail",), 20, 5),
    ("Demo: Payment reminder", 1, ("due",), 12, 6),
    ("Demo: New arrivals", 2, ("retail", "due"), 4, 9),
)
RUNNING_NAME = "Demo: Weekend flash sale (live)"
RUNNING_BODY = (
    '{Hi|Hello} {{ first_name | default("there") }}, flash sale this weekend only: '
    'buy one, get one half price at our {{ city | default("nearest") }} store.'
)
SCHEDULED_NAME = "Demo: Monthly newsletter (scheduled)"

# What customers answer, by template (the index in TEMPLATES).
REPLIES = (
    (
        "Thank you! Will visit this weekend.",
        "Is this offer valid online too?",
        "What time do you close on Sunday?",
        "Great, see you soon",
        "👍",
    ),
    (
        "Paid just now, please check.",
        "Will pay by Friday.",
        "Thanks for the reminder 🙏",
        "Can I pay in two parts?",
    ),
    (
        "Can you send the price list?",
        "Do you have it in blue?",
        "Do you deliver to my area?",
        "👍",
    ),
)
STOP_REPLY = "STOP"

# Permanent failures as the channels report them: (code, what the operator reads).
FAILURES = (
    ("not_on_whatsapp", N_("This number is not on WhatsApp.")),
    (
        "send_failed",
        said(
            "Gave up after %(n)s attempt(s): %(detail)s",
            n=3,
            detail=N_("WhatsApp did not confirm the message."),
        ),
    ),
)
