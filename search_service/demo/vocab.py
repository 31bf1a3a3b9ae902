# ruff: noqa: E501  (curated vocabulary: long string literals read better unbroken)
"""Curated vocabularies: the category tree, what each leaf sells, brands, and the sentences that describe products.

A leaf lists its items; an item may carry its own variants ``{a/b}`` and sizes ``[x/y]`` overriding the leaf's.
A variant is put before the item ("Unsweetened Oat Drink") unless it starts with ``+``, which appends it
("Oat Drink Barista"). A leading ``|`` in a ``|``-separated list includes the plain (empty) variant.
Sizes run from small to large: the price grows with the size's position.
Brands are invented, so no listing pretends to be a real manufacturer's product.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ITEM = re.compile(r"^(?P<name>[^{\[]+?)\s*(?:\{(?P<variants>[^}]*)\})?\s*(?:\[(?P<sizes>[^\]]*)\])?$")


def _split(spec: str, sep: str = "|") -> tuple[str, ...]:
    if not spec:
        return ("",)
    return tuple(part.strip() for part in spec.split(sep))


@dataclass(frozen=True)
class Item:
    name: str
    variants: tuple[str, ...] | None  # None: the leaf's
    sizes: tuple[str, ...] | None


@dataclass(frozen=True)
class Leaf:
    name: str
    items: tuple[Item, ...]
    variants: tuple[str, ...]
    sizes: tuple[str, ...]
    price: tuple[float, float]
    variant_key: str
    colours: tuple[str, ...]
    materials: tuple[str, ...]
    brands: tuple[str, ...]  # empty: the department's
    about: tuple[str, ...]
    weight: float


@dataclass(frozen=True)
class Group:
    name: str
    leaves: tuple[Leaf, ...]


@dataclass(frozen=True)
class Department:
    name: str
    brands: tuple[str, ...]
    sentences: tuple[str, ...]  # templates: {item} {brand} {variant} {size} {colour} {material}
    children: tuple[Leaf | Group, ...]
    weight: float = 1.0
    listing_factor: float = 1.0  # how many stores carry one of its products, relatively


def leaf(
    name: str,
    items: str,
    variants: str = "",
    sizes: str = "",
    price: tuple[float, float] = (1.0, 5.0),
    *,
    key: str = "type",
    colours: str = "",
    materials: str = "",
    brands: str = "",
    about: str = "",
    weight: float = 1.0,
) -> Leaf:
    parsed: list[Item] = []
    for raw in items.split("|"):
        m = _ITEM.match(raw.strip())
        if not m:
            raise ValueError(f"bad item spec {raw!r}")
        parsed.append(
            Item(
                m["name"].strip(),
                _split(m["variants"], "/") if m["variants"] is not None else None,
                _split(m["sizes"], "/") if m["sizes"] is not None else None,
            )
        )
    return Leaf(
        name=name,
        items=tuple(parsed),
        variants=_split(variants),
        sizes=_split(sizes),
        price=price,
        variant_key=key,
        colours=_split(colours),
        materials=_split(materials),
        brands=tuple(b for b in _split(brands) if b),
        about=tuple(s.strip() for s in about.split("||") if s.strip()),
        weight=weight,
    )


def group(name: str, *leaves: Leaf) -> Group:
    return Group(name, leaves)


COLOURS_BASIC = "Black|White|Navy|Grey|Olive|Burgundy|Beige|Sky Blue|Forest Green|Charcoal"
COLOURS_BRIGHT = "Red|Blue|Green|Yellow|Pink|Purple|Orange|Turquoise"
SIZES_CLOTHES = "XS|S|M|L|XL|XXL"
SIZES_SHOES = "EU 36|EU 37|EU 38|EU 39|EU 40|EU 41|EU 42|EU 43|EU 44|EU 45|EU 46"

DEPARTMENTS: tuple[Department, ...] = (
    Department(
        "Grocery",
        brands=_split(
            "Nordhof|Casa Verde|Golden Field|Bellavita|Everyday Essentials|Harvest Moon|Kitchen Garden|Old Mill"
            "|Sunvalley|Terra Nostra|Blue Harbour|Green Basket|Maison Roux|Little Farm|Spice Route"
        ),
        sentences=(
            "A pantry staple from {brand}.",
            "Store in a cool, dry place and consume within a few days of opening.",
            "Made without artificial colours or preservatives.",
            "Packed in {size} for everyday cooking.",
            "A favourite for quick weeknight meals.",
            "Sourced from trusted growers and carefully packed.",
        ),
        weight=2.2,
        listing_factor=1.3,
        children=(
            leaf(
                "Pasta & Rice",
                "Spaghetti|Penne Rigate|Fusilli|Tagliatelle|Farfalle|Lasagne Sheets|Basmati Rice|Jasmine Rice"
                "|Risotto Rice|Long Grain Rice|Couscous|Bulgur Wheat|Quinoa|Egg Noodles|Rice Noodles",
                "|Wholewheat|Organic|Gluten-Free",
                "500 g|1 kg|2 kg",
                (0.79, 3.9),
                about="Cooks in 10 to 12 minutes and pairs with any sauce.",
            ),
            leaf(
                "Canned & Jarred Food",
                "Chopped Tomatoes|Passata|Chickpeas|Red Kidney Beans|Black Beans|Sweetcorn|Tuna Chunks in Olive Oil"
                "|Coconut Milk|Baked Beans in Tomato Sauce|Green Lentils|Cannellini Beans|Sardines in Tomato Sauce"
                "|Peeled Plum Tomatoes|Pickled Gherkins|Green Olives",
                "|Organic|Reduced Salt",
                "400 g|3 x 400 g",
                (0.59, 3.5),
                about="Ready to use straight from the tin or jar.",
            ),
            leaf(
                "Breakfast Cereals",
                "Cornflakes|Porridge Oats|Crunchy Granola|Swiss-Style Muesli|Bran Flakes|Oat Clusters|Puffed Rice"
                "|Overnight Oats|Spelt Flakes",
                "|Honey|Chocolate|Berry|Nut & Seed|No Added Sugar|Organic",
                "375 g|500 g|750 g",
                (1.49, 5.49),
                key="flavour",
                about="A wholesome start to the day, delicious with milk, yoghurt or a plant-based drink.",
            ),
            leaf(
                "Sauces & Condiments",
                "Tomato Ketchup|Mayonnaise|Dijon Mustard|Pesto alla Genovese|Tomato & Basil Pasta Sauce|Soy Sauce"
                "|Sweet Chilli Sauce|Barbecue Sauce|Hot Sauce|Hollandaise Sauce|Tahini|Sriracha|Worcestershire Sauce",
                "|Organic|Light|Extra Hot|Squeezy",
                "250 ml|500 ml",
                (0.99, 4.99),
                about="Adds instant flavour to pasta, burgers, stir-fries and dips.",
            ),
            leaf(
                "Oils & Vinegars",
                "Extra Virgin Olive Oil|Sunflower Oil|Rapeseed Oil|Toasted Sesame Oil|Coconut Oil|Balsamic Vinegar"
                "|Apple Cider Vinegar|White Wine Vinegar|Avocado Oil",
                "|Organic|Cold-Pressed",
                "250 ml|500 ml|750 ml|1 L",
                (1.49, 11.9),
                about="For dressing salads, roasting vegetables and everyday frying.",
            ),
            leaf(
                "Baking",
                "Plain Flour|Self-Raising Flour|Strong Bread Flour|Spelt Flour|Caster Sugar|Light Brown Sugar"
                "|Icing Sugar|Baking Powder|Fast-Action Dried Yeast[7 g/3 x 7 g]|Vanilla Extract[38 ml/100 ml]"
                "|Cocoa Powder|Dark Chocolate Chips|Ground Almonds",
                "|Organic|Fairtrade",
                "250 g|500 g|1 kg",
                (0.69, 5.49),
                about="Everything you need for bread, cakes, cookies and pancakes.",
            ),
            leaf(
                "Spreads & Honey",
                "Strawberry Jam|Raspberry Jam|Apricot Jam|Orange Marmalade|Peanut Butter{Smooth/Crunchy/Organic}"
                "|Chocolate Hazelnut Spread|Runny Honey|Set Honey|Almond Butter{Smooth/Crunchy}|Maple Syrup"
                "|Lemon Curd",
                "|Organic|Reduced Sugar",
                "250 g|340 g|450 g",
                (1.29, 6.99),
                about="Delicious on toast, pancakes and porridge.",
            ),
            leaf(
                "Crisps & Snacks",
                "Crisps|Kettle Chips|Tortilla Chips|Salted Pretzels|Popcorn|Rice Cakes|Salted Peanuts|Trail Mix"
                "|Cheese Crackers|Vegetable Crisps|Roasted Chickpeas",
                "Sea Salt|Paprika|Sour Cream & Onion|Cheese & Onion|Salt & Vinegar|Sweet Chilli|Lightly Salted",
                "100 g|150 g|200 g",
                (0.99, 3.99),
                key="flavour",
                about="A crunchy snack for sharing, movie nights and lunch boxes.",
            ),
            leaf(
                "Chocolate & Sweets",
                "Milk Chocolate Bar|Dark Chocolate Bar 70%|White Chocolate Bar|Gummy Bears|Liquorice Wheels"
                "|Chocolate Chip Cookies|Butter Biscuits|Wafer Bars|Chocolate Pralines|Fruit Gums|Marzipan Bar"
                "|Oat Biscuits",
                "|Hazelnut|Sea Salt|Orange|Mint|Almond|Caramel",
                "100 g|200 g|300 g",
                (0.89, 5.99),
                key="flavour",
                about="A sweet treat for the afternoon coffee break.",
            ),
            leaf(
                "Coffee",
                "Ground Coffee|Whole Bean Coffee|Espresso Beans|Instant Coffee|Coffee Capsules[10 capsules/30 capsules]"
                "|Coffee Pods[16 pods/36 pods]|Cold Brew Coffee Bags[8 bags]",
                "|Decaf|Organic|Fairtrade|Medium Roast|Dark Roast|Intense",
                "200 g|250 g|500 g|1 kg",
                (2.49, 16.9),
                key="roast",
                about="Freshly roasted and aroma-sealed for a rich, full-bodied cup.",
            ),
            leaf(
                "Tea",
                "English Breakfast Tea|Earl Grey Tea|Green Tea|Peppermint Tea|Chamomile Tea|Rooibos Tea"
                "|Fruit Tea|Ginger & Lemon Tea|Chai Tea|Matcha Powder[30 g/100 g]|Loose Leaf Black Tea[100 g/250 g]",
                "|Organic|Decaf|Fairtrade",
                "20 bags|40 bags|80 bags",
                (1.29, 7.99),
                about="Brew for three to five minutes in freshly boiled water.",
            ),
            leaf(
                "World Foods",
                "Instant Ramen Noodles|Red Thai Curry Paste|Green Thai Curry Paste|Tortilla Wraps|Tomato Salsa"
                "|Miso Paste|Sushi Rice|Nori Sheets|Coconut Cream|Fish Sauce|Tikka Masala Sauce|Harissa Paste"
                "|Refried Beans|Kimchi",
                "|Mild|Hot|Organic",
                "",
                (1.19, 5.49),
                about="Bring the flavours of the world into your kitchen.",
            ),
            leaf(
                "Herbs & Spices",
                "Ground Cumin|Smoked Paprika|Ground Cinnamon|Black Peppercorns|Sea Salt Flakes|Dried Oregano"
                "|Chilli Flakes|Turmeric|Garam Masala|Mixed Herbs|Bay Leaves|Nutmeg|Curry Powder|Garlic Granules",
                "|Organic",
                "30 g|50 g|100 g",
                (0.99, 4.49),
                about="Season soups, stews, curries and roasts.",
            ),
            leaf(
                "Soups & Ready Meals",
                "Tomato Soup|Lentil Soup|Chicken Noodle Soup|Minestrone|Vegetable Curry|Chilli con Carne"
                "|Mac & Cheese|Lasagne|Pad Thai|Mushroom Risotto|Falafel Wrap Kit",
                "|Vegan|Organic|High Protein",
                "400 g|2 x 400 g",
                (1.79, 5.99),
                about="Ready in minutes in the microwave or on the hob.",
            ),
        ),
    ),
    Department(
        "Fresh Produce",
        brands=_split("Green Acre|Orchard Fresh|Sunny Fields|Valley Farms|Rooted|Market Garden|Bio Hof|Wild Meadow"),
        sentences=(
            "Grown by {brand} and picked at peak ripeness.",
            "Keep refrigerated and enjoy within a few days.",
            "Delivered fresh to the shelf every morning.",
            "Wash before eating.",
            "Perfect for salads, snacks and home cooking.",
        ),
        weight=1.1,
        listing_factor=1.4,
        children=(
            leaf(
                "Fruit",
                "Bananas|Gala Apples|Braeburn Apples|Granny Smith Apples|Conference Pears|Navel Oranges|Lemons|Limes"
                "|Seedless Red Grapes|Easy Peelers|Mango|Pineapple|Kiwi Fruit|Avocados|Plums|Nectarines",
                "|Organic|Fairtrade",
                "500 g|1 kg|2 kg",
                (0.79, 4.49),
                about="Naturally sweet and full of vitamins.",
            ),
            leaf(
                "Berries",
                "Strawberries|Blueberries|Raspberries|Blackberries|Cherries|Redcurrants",
                "|Organic",
                "125 g|250 g|400 g",
                (1.49, 5.99),
                about="Juicy seasonal berries, lovely on yoghurt, porridge or cake.",
            ),
            leaf(
                "Vegetables",
                "Carrots|Potatoes|Baby New Potatoes|Red Onions|Brown Onions|Garlic Bulbs[3 pack/250 g]|Broccoli"
                "|Cauliflower|Courgettes|Cucumber|Red Peppers|Cherry Tomatoes|Vine Tomatoes|Sweet Potatoes"
                "|Chestnut Mushrooms|Leeks|Green Asparagus|Aubergine|Fennel|Beetroot|Parsnips|Kale|Savoy Cabbage",
                "|Organic|Loose",
                "250 g|500 g|1 kg|2 kg",
                (0.59, 4.29),
                about="Crisp, fresh vegetables for roasting, steaming and soups.",
            ),
            leaf(
                "Salad & Fresh Herbs",
                "Basil|Flat-Leaf Parsley|Coriander|Mint|Rocket|Mixed Salad Leaves|Baby Spinach|Chives|Rosemary"
                "|Thyme|Iceberg Lettuce|Little Gem Lettuce|Lamb's Lettuce|Watercress",
                "|Organic|Potted",
                "30 g|80 g|150 g",
                (0.69, 2.99),
                about="Freshly cut greens and herbs that lift any dish.",
            ),
            leaf(
                "Nuts, Seeds & Dried Fruit",
                "Almonds|Walnuts|Cashew Nuts|Hazelnuts|Brazil Nuts|Pistachios|Raisins|Dried Apricots|Medjool Dates"
                "|Dried Cranberries|Mixed Nuts|Pumpkin Seeds|Sunflower Seeds|Chia Seeds|Linseeds",
                "|Organic|Roasted & Salted|Unsalted",
                "100 g|200 g|500 g",
                (1.29, 8.99),
                about="A nutritious snack and a crunchy topping for muesli and salads.",
            ),
        ),
    ),
    Department(
        "Dairy, Eggs & Plant-Based",
        brands=_split("Alpenmilch|Meadow Gold|Happy Cow|Bergbauer|Clover Hill|Frischhof|Weidegold|Dairy Lane"),
        sentences=(
            "From {brand}, kept chilled from dairy to shelf.",
            "Keep refrigerated at 2 to 7 °C; once opened, use within three days.",
            "A source of calcium and protein.",
            "Great in coffee, smoothies, baking and on cereal.",
            "Shake well before use.",
        ),
        weight=1.3,
        listing_factor=1.4,
        children=(
            leaf(
                "Milk",
                "Whole Milk|Semi-Skimmed Milk|Skimmed Milk|Lactose-Free Milk|Buttermilk|Goat's Milk|Chocolate Milk",
                "|Organic|Fresh|Long-Life|Hay Milk",
                "500 ml|1 L|1.5 L|2 L",
                (0.89, 2.99),
                about="Fresh milk for breakfast, coffee and cooking.",
            ),
            leaf(
                "Plant-Based Drinks",
                "Oat Drink|Oat Milk|Almond Drink|Soy Drink|Coconut Drink|Rice Drink|Pea Protein Drink|Hazelnut Drink"
                "|Cashew Drink|Oat Drink Barista Edition{/Organic/Light}",
                "+Barista|Unsweetened|+Original|Chocolate|Vanilla|Organic|Calcium Enriched",
                "250 ml|1 L|6 x 1 L",
                (0.99, 3.49),
                key="style",
                brands="Oatfield|Green Oat|Nutree|Soyana|Plantiful|Coco Isle|Haferglück|Good Hemp Co",
                about="A dairy-free, vegan alternative to cow's milk, lactose-free and suitable for vegans."
                "||Froths well for cappuccino and latte, and is lovely on cereal.",
                weight=2.0,
            ),
            leaf(
                "Plant-Based Alternatives",
                "Oat Yoghurt|Soy Yoghurt|Coconut Yoghurt|Vegan Cheese Slices|Grated Vegan Cheese|Plant-Based Butter"
                "|Firm Tofu|Smoked Tofu|Silken Tofu|Tempeh|Vegan Burger Patties|Plant-Based Mince|Oat Cream|Soy Cream"
                "|Vegan Sausages",
                "|Organic|Natural|Original",
                "150 g|200 g|400 g",
                (1.29, 4.99),
                brands="Oatfield|Green Oat|Nutree|Soyana|Plantiful|Coco Isle|Haferglück|Good Hemp Co",
                about="A plant-based, dairy-free and vegan alternative, rich in protein.",
            ),
            leaf(
                "Cheese",
                "Mature Cheddar|Gouda|Emmental|Mozzarella|Parmigiano Reggiano|Brie|Camembert|Feta|Halloumi"
                "|Cream Cheese|Grated Mozzarella|Mountain Cheese|Goat's Cheese|Gorgonzola|Manchego|Burrata",
                "|Organic|Light|Sliced|Grated",
                "125 g|200 g|400 g",
                (1.19, 6.99),
                about="Perfect for cheese boards, sandwiches, gratins and pizza.",
            ),
            leaf(
                "Yoghurt & Desserts",
                "Greek Yoghurt|Natural Yoghurt|Skyr|Fruit Yoghurt|Quark|Rice Pudding|Chocolate Pudding|Kefir"
                "|Panna Cotta|Crème Brûlée",
                "|Strawberry|Vanilla|Blueberry|Peach|Natural|0% Fat|Organic",
                "150 g|500 g|4 x 125 g",
                (0.49, 3.99),
                key="flavour",
                about="Creamy and smooth; enjoy on its own or with fruit and granola.",
            ),
            leaf(
                "Butter & Cream",
                "Salted Butter|Unsalted Butter|Spreadable Butter|Double Cream|Single Cream|Sour Cream|Crème Fraîche"
                "|Whipping Cream|Clarified Butter|Mascarpone",
                "|Organic|Light",
                "200 ml|250 g|500 g",
                (0.99, 4.99),
                about="For baking, sauces and spreading on fresh bread.",
            ),
            leaf(
                "Eggs",
                "Free-Range Eggs|Organic Eggs|Barn Eggs|Quail Eggs[12 pack/18 pack]|Liquid Egg White[500 ml]",
                "Medium|Large|Mixed Weight",
                "6 pack|10 pack|12 pack",
                (1.49, 4.99),
                key="grade",
                about="Laid by hens with access to outdoor pasture.",
            ),
        ),
    ),
    Department(
        "Bakery",
        brands=_split("Backstube|Artisan Oven|Golden Crust|Baker's Dozen|Rye & Co|Sauerteig|Le Fournil|Morning Loaf"),
        sentences=(
            "Baked fresh every day by {brand}.",
            "Best enjoyed within two days; freezes well.",
            "Made with a long, slow fermentation for more flavour.",
            "No palm oil and no artificial additives.",
        ),
        weight=0.8,
        listing_factor=1.3,
        children=(
            leaf(
                "Bread",
                "Sourdough Loaf|Wholemeal Bread|Dark Rye Bread|Multigrain Loaf|White Sandwich Loaf|Spelt Bread"
                "|Ciabatta|Baguette|Farmhouse Loaf|Pumpernickel|Gluten-Free Bread|Sunflower Seed Bread",
                "|Seeded|Sliced|Organic",
                "400 g|500 g|750 g|1 kg",
                (1.19, 4.99),
                about="A crusty loaf with a soft, airy crumb.",
            ),
            leaf(
                "Rolls & Buns",
                "Bread Rolls|Brioche Buns|Burger Buns|Pretzel Rolls|Bagels|English Muffins|Hot Dog Rolls"
                "|Kaiser Rolls|Seeded Rolls",
                "|Sesame|Wholemeal|Multigrain",
                "4 pack|6 pack|10 pack",
                (0.99, 3.99),
                about="Soft rolls for breakfast, burgers and packed lunches.",
            ),
            leaf(
                "Pastries & Cakes",
                "All-Butter Croissants|Pain au Chocolat|Cinnamon Rolls|Apple Strudel|Baked Cheesecake|Carrot Cake"
                "|Blueberry Muffins|Glazed Doughnuts|Danish Pastries|Lemon Drizzle Cake|Marble Cake|Brownies",
                "|Vegan|Mini",
                "2 pack|4 pack|6 pack",
                (1.49, 6.99),
                about="A sweet bakery treat with coffee or tea.",
            ),
            leaf(
                "Wraps, Flatbreads & Crackers",
                "Tortilla Wraps|Pitta Bread|Garlic Naan Bread|Plain Naan Bread|Flatbread|Rye Crispbread|Rice Crackers"
                "|Oatcakes|Breadsticks|Crackers",
                "|Wholemeal|Gluten-Free",
                "",
                (0.99, 3.49),
                about="Handy for wraps, dips and quick lunches.",
            ),
        ),
    ),
    Department(
        "Meat, Fish & Deli",
        brands=_split("Butcher's Pride|Fjord Catch|Landmetzger|Ocean Fresh|Hillside Farm|Salumeria Rossi"),
        sentences=(
            "Prepared by {brand} to high welfare standards.",
            "Keep refrigerated below 5 °C and cook thoroughly before eating.",
            "Suitable for home freezing on the day of purchase.",
        ),
        weight=0.8,
        listing_factor=1.1,
        children=(
            leaf(
                "Meat & Poultry",
                "Chicken Breast Fillets|Chicken Thighs|Beef Mince 5% Fat|Beef Steak|Pork Sausages|Pork Loin Steaks"
                "|Lamb Chops|Turkey Breast|Diced Beef|Chicken Drumsticks|Streaky Bacon",
                "|Free-Range|Organic",
                "300 g|500 g|1 kg",
                (2.49, 14.9),
                about="Tender cuts for grilling, roasting and stir-frying.",
            ),
            leaf(
                "Fish & Seafood",
                "Salmon Fillets|Smoked Salmon|Cod Loins|King Prawns|Tuna Steaks|Mackerel Fillets|Mussels|Sea Bass",
                "|MSC Certified|Wild|Smoked",
                "150 g|250 g|400 g",
                (2.99, 15.9),
                about="Responsibly sourced fish, rich in omega-3.",
            ),
            leaf(
                "Deli & Cooked Meats",
                "Cooked Ham|Salami Milano|Chorizo|Prosciutto|Roast Chicken Slices|Hummus|Olive Tapenade"
                "|Pastrami|Liver Pâté|Tzatziki",
                "|Organic|Thinly Sliced",
                "80 g|150 g|250 g",
                (1.49, 6.49),
                about="Ready to eat in sandwiches, salads and antipasti platters.",
            ),
        ),
    ),
    Department(
        "Frozen",
        brands=_split("Polar Kitchen|Frosty Fields|Iceberg Foods|Nordic Frost|Gelato Vero"),
        sentences=(
            "Frozen at the peak of freshness by {brand}.",
            "Store at -18 °C or below; do not refreeze once thawed.",
            "Cook from frozen in minutes.",
        ),
        weight=0.6,
        listing_factor=1.0,
        children=(
            leaf(
                "Frozen Vegetables & Fruit",
                "Garden Peas|Sweetcorn|Mixed Vegetables|Spinach Portions|Broccoli Florets|Mixed Berries"
                "|Mango Chunks|Edamame Beans|Oven Chips|Sweet Potato Fries",
                "|Organic",
                "500 g|1 kg|2.5 kg",
                (0.99, 4.99),
                about="Frozen within hours of harvest to lock in the goodness.",
            ),
            leaf(
                "Frozen Meals & Pizza",
                "Stone-Baked Pizza Margherita|Pepperoni Pizza|Four Cheese Pizza|Fish Fingers|Vegetable Spring Rolls"
                "|Chicken Nuggets|Veggie Burgers|Dumplings|Lasagne",
                "|Vegan|Family Size",
                "",
                (1.99, 6.99),
                about="A quick, satisfying dinner straight from the freezer.",
            ),
            leaf(
                "Ice Cream",
                "Vanilla Ice Cream|Chocolate Ice Cream|Salted Caramel Ice Cream|Strawberry Sorbet|Lemon Sorbet"
                "|Ice Lollies|Choc Ices|Frozen Yoghurt|Pistachio Gelato|Cookie Dough Ice Cream",
                "|Vegan|Dairy-Free",
                "500 ml|900 ml|6 pack",
                (1.99, 6.99),
                key="flavour",
                about="Rich and creamy, for sunny afternoons and desserts.",
            ),
        ),
    ),
    Department(
        "Drinks",
        brands=_split(
            "Quellwasser|Alpine Spring|Citrus Grove|Fizz & Co|Hopfenhaus|Brauerei Lindner|Château Belair|Vintners Hill"
            "|Orchard Press|Highland Still"
        ),
        sentences=(
            "From {brand}; best served chilled.",
            "Refreshing at any time of day.",
            "Comes in a recyclable {size} container.",
        ),
        weight=1.2,
        listing_factor=1.3,
        children=(
            group(
                "Soft Drinks & Water",
                leaf(
                    "Water",
                    "Still Mineral Water|Sparkling Mineral Water|Lightly Sparkling Water|Spring Water"
                    "|Flavoured Water{Lemon/Cucumber & Mint/Peach}",
                    "",
                    "500 ml|1 L|1.5 L|6 x 1.5 L",
                    (0.29, 4.49),
                    about="Naturally low in sodium.",
                ),
                leaf(
                    "Soft Drinks",
                    "Cola|Cola Zero Sugar|Lemonade|Ginger Beer|Tonic Water|Iced Tea|Orange Soda|Elderflower Pressé"
                    "|Root Beer|Club Mate",
                    "|Sugar-Free|Organic",
                    "330 ml|500 ml|1.5 L|6 x 330 ml",
                    (0.69, 4.99),
                    about="A fizzy, refreshing soft drink.",
                ),
                leaf(
                    "Juices & Smoothies",
                    "Orange Juice|Apple Juice|Multivitamin Juice|Pineapple Juice|Grapefruit Juice|Tomato Juice"
                    "|Mango Smoothie|Berry Smoothie|Green Smoothie|Ginger Shot[60 ml/3 x 60 ml]",
                    "|Not From Concentrate|With Bits|Smooth|Organic",
                    "250 ml|750 ml|1 L",
                    (0.99, 4.49),
                    about="Pressed from ripe fruit with no added sugar.",
                ),
                leaf(
                    "Energy & Sports Drinks",
                    "Energy Drink|Isotonic Sports Drink|Electrolyte Drink|Protein Shake|Coconut Water",
                    "|Sugar-Free|Tropical|Citrus|Berry",
                    "250 ml|500 ml|4 x 250 ml",
                    (0.99, 5.49),
                    about="Hydration and energy for training and long days.",
                ),
            ),
            group(
                "Beer, Wine & Spirits",
                leaf(
                    "Beer & Cider",
                    "Pilsner|Lager|Pale Ale|IPA|Wheat Beer|Stout|Alcohol-Free Beer|Dry Cider|Radler",
                    "|Craft|Organic",
                    "330 ml|500 ml|6 x 330 ml|20 x 500 ml",
                    (0.89, 19.9),
                    about="Please drink responsibly. Sold only to adults.",
                ),
                leaf(
                    "Wine",
                    "Merlot|Cabernet Sauvignon|Pinot Noir|Rioja Crianza|Chianti|Sauvignon Blanc|Riesling"
                    "|Pinot Grigio|Chardonnay|Rosé|Prosecco|Cava|Champagne Brut",
                    "|Organic|Reserve|Alcohol-Free",
                    "375 ml|750 ml|1.5 L",
                    (4.49, 29.9),
                    about="Pairs beautifully with pasta, grilled meat and cheese. Please drink responsibly.",
                ),
                leaf(
                    "Spirits",
                    "London Dry Gin|Vodka|Single Malt Whisky|Blended Scotch Whisky|Dark Rum|White Rum|Tequila Blanco"
                    "|Amaretto|Coffee Liqueur|Herbal Liqueur",
                    "|Premium|Small Batch",
                    "200 ml|500 ml|700 ml",
                    (9.99, 49.9),
                    about="Enjoy neat, over ice or in cocktails. Sold only to adults.",
                ),
            ),
        ),
    ),
    Department(
        "Pharmacy & Health",
        brands=_split(
            "Medivia|Curamed|PharmaNord|Vitalis|Apotheka|HealWell|Salvia Labs|Remedia|Everyday Essentials|Sanocare"
        ),
        sentences=(
            "Always read the label and the enclosed leaflet.",
            "Manufactured by {brand} to pharmaceutical quality standards.",
            "Keep out of the sight and reach of children.",
            "If symptoms persist, talk to your doctor or pharmacist.",
            "Store below 25 °C.",
        ),
        weight=1.1,
        listing_factor=1.2,
        children=(
            leaf(
                "Pain Relief",
                "Paracetamol 500 mg Tablets|Ibuprofen 400 mg Tablets|Ibuprofen 200 mg Tablets|Aspirin 500 mg Tablets"
                "|Headache Relief Tablets|Migraine Relief Capsules|Paracetamol 500 mg Effervescent Tablets"
                "|Ibuprofen Liquid Capsules|Naproxen 250 mg Tablets|Children's Paracetamol Suspension[100 ml/200 ml]"
                "|Ibuprofen Gel 5%[50 g/100 g]|Heat Patches[3 pack/6 pack]",
                "|Fast-Acting|Film-Coated",
                "12 pack|16 pack|20 pack|32 pack",
                (1.49, 8.99),
                key="form",
                about="For the effective relief of headache, migraine, toothache, period pain, back pain and fever."
                "||Painkiller tablets for mild to moderate pain.",
                weight=1.6,
            ),
            leaf(
                "Cold & Flu",
                "Cough Syrup|Chesty Cough Mixture|Throat Lozenges|Sore Throat Spray|Decongestant Nasal Spray"
                "|Cold & Flu Capsules|Hot Lemon Powders|Saline Nasal Spray|Vapour Rub|Steam Inhalation Capsules",
                "|Honey & Lemon|Menthol|Cherry|Sugar-Free|Non-Drowsy",
                "10 ml|100 ml|200 ml",
                (2.49, 9.99),
                about="Relieves the symptoms of colds and flu: blocked nose, sore throat, cough and aches.",
            ),
            leaf(
                "Allergy & Hay Fever",
                "Cetirizine 10 mg Tablets|Loratadine 10 mg Tablets|Allergy Eye Drops[10 ml]|Hay Fever Nasal Spray"
                "|Antihistamine Cream[25 g]|Fexofenadine 120 mg Tablets",
                "|One-a-Day|Non-Drowsy",
                "7 pack|14 pack|30 pack",
                (2.99, 12.9),
                about="Fast relief from sneezing, itchy eyes and runny nose caused by hay fever and allergies.",
            ),
            leaf(
                "Vitamins & Supplements",
                "Vitamin D3 1000 IU|Vitamin C 1000 mg|Multivitamin|Magnesium 400 mg|Omega-3 Fish Oil|Zinc 15 mg"
                "|Iron 14 mg|Probiotic Capsules|Biotin|Vitamin B12|Folic Acid 400 µg|Calcium + Vitamin D"
                "|Collagen Powder|Melatonin-Free Sleep Aid",
                "|Effervescent|Vegan|Chewable|Slow-Release",
                "30 tablets|60 tablets|90 capsules|180 capsules",
                (2.99, 19.9),
                about="A food supplement supporting the immune system and normal energy levels.",
            ),
            leaf(
                "First Aid",
                "Fabric Plasters|Waterproof Plasters|Kids' Plasters|Blister Plasters|Sterile Gauze Swabs"
                "|Elastic Bandage|Antiseptic Cream|Antiseptic Wipes|Wound Spray|First Aid Kit{Home/Travel/Car}"
                "|Instant Cold Pack|Tweezers",
                "|Sensitive|Extra Strong",
                "10 pcs|20 pcs|40 pcs",
                (1.49, 19.9),
                about="For cleaning, covering and protecting minor cuts, grazes and blisters.",
            ),
            leaf(
                "Digestive Health",
                "Antacid Tablets|Heartburn Relief Liquid[200 ml/300 ml]|Oral Rehydration Sachets"
                "|Anti-Diarrhoea Capsules|Gentle Laxative Tablets|Anti-Bloating Capsules|Travel Sickness Tablets",
                "|Peppermint|Fast-Acting",
                "6 pack|12 pack|24 pack",
                (2.49, 9.99),
                about="Soothes indigestion, heartburn, bloating and upset stomachs.",
            ),
            leaf(
                "Health Devices",
                "Digital Thermometer|Infrared Ear Thermometer|Blood Pressure Monitor|Pulse Oximeter|Pill Organiser"
                "|Hot Water Bottle|Hearing Aid Batteries[6 pack]|Reading Glasses{++1.0/++1.5/++2.0/++2.5}",
                "",
                "",
                (4.99, 59.9),
                about="Reliable home health monitoring, easy to read and easy to use.",
            ),
        ),
    ),
    Department(
        "Beauty & Personal Care",
        brands=_split(
            "Lumière|Nivelle|Botanica|Pure Skin|Maison Belle|Aqua Vita|Dr. Lindgren|Evergreen Naturals|Silk & Stone"
            "|Barbero|Sol Glow|Everyday Essentials"
        ),
        sentences=(
            "Dermatologically tested by {brand}.",
            "Vegan formula, never tested on animals.",
            "Free from parabens and microplastics.",
            "For daily use.",
            "In a bottle made from 50% recycled plastic.",
        ),
        weight=1.6,
        listing_factor=1.0,
        children=(
            leaf(
                "Hair Care",
                "Shampoo|Conditioner|Hair Mask[200 ml]|Dry Shampoo[200 ml]|Hair Oil[100 ml]|Styling Gel[150 ml]"
                "|Hairspray[300 ml]|Leave-In Conditioner[150 ml]|Solid Shampoo Bar[60 g]",
                "|For Dry Hair|Anti-Dandruff|Volume|Colour Protect|Argan Oil|Repair|Curl|Kids",
                "250 ml|400 ml|1 L",
                (1.49, 12.9),
                key="hair_type",
                about="Cleanses gently and leaves hair soft, shiny and easy to comb.",
            ),
            leaf(
                "Skin Care",
                "Daily Moisturiser|Gentle Face Wash|Micellar Water|Night Cream|Vitamin C Serum|Hyaluronic Acid Serum"
                "|Eye Cream|Clay Face Mask|Exfoliating Toner|Hand Cream|Body Lotion|Lip Balm[4.8 g]|Foot Cream",
                "|Sensitive|Hydrating|Oil-Free|Fragrance-Free|Anti-Ageing|SPF 15",
                "30 ml|50 ml|200 ml|400 ml",
                (2.49, 24.9),
                key="skin_type",
                about="Moisturises and protects skin for up to 48 hours.",
            ),
            leaf(
                "Oral Care",
                "Toothpaste[75 ml/2 x 75 ml]|Manual Toothbrush[1 pack/2 pack]|Electric Toothbrush Heads[4 pack/8 pack]"
                "|Dental Floss[50 m]|Interdental Brushes[8 pack]|Mouthwash[500 ml]|Bamboo Toothbrush[1 pack/4 pack]"
                "|Whitening Strips[14 pack]",
                "|Whitening|Sensitive|Fresh Mint|Herbal|Kids|Gum Care",
                "",
                (0.99, 14.9),
                about="Fights plaque and cavities for healthy teeth and gums.",
            ),
            leaf(
                "Bath & Shower",
                "Shower Gel|Bar Soap[100 g/3 x 100 g]|Liquid Hand Soap|Bubble Bath|Body Scrub[200 ml]"
                "|Bath Salts[500 g]|Shower Oil|Hand Soap Refill[500 ml/1 L]",
                "Lavender|Coconut|Sea Minerals|Aloe Vera|Citrus|Sandalwood|Oat & Honey|Unscented",
                "250 ml|500 ml|750 ml",
                (0.89, 8.99),
                key="scent",
                about="A rich, creamy lather that cleanses without drying the skin.",
            ),
            leaf(
                "Deodorants",
                "Roll-On Deodorant|Antiperspirant Spray|Deodorant Stick|Natural Deodorant Cream|Deodorant Spray",
                "Fresh|Sensitive|Men|Unscented|Cotton|Sport|Invisible",
                "50 ml|150 ml|2 x 150 ml",
                (1.29, 6.99),
                key="scent",
                about="48-hour protection against odour and wetness.",
            ),
            leaf(
                "Shaving & Grooming",
                "Razor Blades[4 pack/8 pack]|Disposable Razors[5 pack/10 pack]|Shaving Foam[250 ml]|Shaving Gel[200 ml]"
                "|Aftershave Balm[100 ml]|Beard Oil[30 ml]|Safety Razor|Beard Trimmer|Wax Strips[20 pack]",
                "|Sensitive|Men|Women|Aloe",
                "",
                (1.99, 39.9),
                about="For a close, comfortable shave without irritation.",
            ),
            leaf(
                "Make-Up & Nails",
                "Mascara|Liquid Foundation|Matte Lipstick|Eyeliner Pencil|Concealer|Nail Polish|Lip Gloss|Bronzer"
                "|Eyeshadow Palette|Setting Powder",
                "|Waterproof|Long-Lasting|Vegan",
                "",
                (2.99, 19.9),
                key="finish",
                colours="Nude|Classic Red|Berry|Coral|Black|Brown|Ivory|Beige|Sand|Rose|Plum|Caramel",
                about="Buildable, long-lasting colour that stays put all day.",
            ),
            leaf(
                "Sun Care",
                "Sun Cream SPF 30|Sun Cream SPF 50|Kids' Sun Spray SPF 50+|After Sun Lotion|Face Sun Fluid SPF 50"
                "|Self-Tanning Lotion|Sun Stick SPF 50[9 g]",
                "|Sensitive|Water-Resistant|Tinted",
                "50 ml|200 ml|400 ml",
                (3.99, 19.9),
                about="Broad-spectrum UVA and UVB protection, water-resistant for 80 minutes.",
            ),
            leaf(
                "Feminine Care",
                "Regular Tampons|Super Tampons|Sanitary Pads|Panty Liners|Menstrual Cup|Period Pants[S/M/L]"
                "|Intimate Wash[250 ml]",
                "|Organic Cotton|Ultra Thin|Night",
                "16 pack|20 pack|32 pack",
                (1.49, 19.9),
                about="Comfortable, reliable protection all day and night.",
            ),
        ),
    ),
    Department(
        "Household",
        brands=_split("CleanPro|Fresca|Sparkle|EcoHome|Hausfee|Bright Day|Everyday Essentials|Green Leaf"),
        sentences=(
            "A household essential from {brand}.",
            "Plant-based surfactants; the packaging is fully recyclable.",
            "Tough on dirt, gentle on surfaces.",
            "Keep out of reach of children.",
            "Built for everyday use and years of service.",
        ),
        weight=1.4,
        listing_factor=1.1,
        children=(
            leaf(
                "Cleaning",
                "All-Purpose Cleaner|Bathroom Cleaner|Glass Cleaner|Kitchen Degreaser|Limescale Remover"
                "|Toilet Cleaner Gel|Floor Cleaner|Thick Bleach|Oven Cleaner|Disinfectant Spray|Microfibre Cloths[5 pack]"
                "|Scouring Pads[6 pack]|Mop Refill",
                "|Lemon|Fresh|Eucalyptus|Unscented|Eco",
                "500 ml|750 ml|1 L",
                (0.99, 6.99),
                key="scent",
                about="Removes grease, grime and limescale with no scrubbing.",
            ),
            leaf(
                "Laundry",
                "Laundry Detergent Liquid|Laundry Pods|Washing Powder|Fabric Softener|Stain Remover Spray[500 ml]"
                "|Colour Catcher Sheets[20 sheets]|Laundry Sanitiser[1 L]|Wool & Delicates Wash[750 ml]",
                "|Sensitive|Colour|Bio|Non-Bio|Lavender|Fresh Cotton",
                "20 washes|40 washes|60 washes",
                (1.99, 14.9),
                about="Brilliant results even at 30 °C.",
            ),
            leaf(
                "Dishwashing",
                "Washing-Up Liquid[450 ml/900 ml]|Dishwasher Tablets[30 pack/60 pack]|Rinse Aid[500 ml]"
                "|Dishwasher Salt[1.5 kg]|Scrub Sponges[5 pack]|Dish Brush|Dishwasher Cleaner[250 ml]",
                "|Lemon|Original|Eco|Sensitive",
                "",
                (0.79, 12.9),
                about="Cuts through grease for sparkling dishes.",
            ),
            leaf(
                "Paper & Tissues",
                "Toilet Paper|Kitchen Roll[2 rolls/4 rolls/8 rolls]|Facial Tissues[3 boxes/1 box]|Paper Napkins[50 pack]"
                "|Pocket Tissues[10 pack/30 pack]",
                "|3-Ply|Recycled|Quilted|Extra Soft",
                "4 rolls|9 rolls|16 rolls",
                (0.99, 9.99),
                about="Soft and strong, from responsibly managed forests.",
            ),
            leaf(
                "Bin Bags & Food Storage",
                "Bin Bags[20 pack/40 pack]|Compostable Food Waste Bags[25 pack]|Cling Film[30 m]|Aluminium Foil[10 m/30 m]"
                "|Freezer Bags[50 pack]|Baking Paper[10 m]|Food Storage Containers[3 pack/5 pack]|Beeswax Wraps[3 pack]"
                "|Zip Lock Bags[20 pack]",
                "|Heavy Duty|Drawstring|Recycled",
                "",
                (0.99, 12.9),
                about="Keeps food fresh and the kitchen tidy.",
            ),
            leaf(
                "Cookware & Kitchen Tools",
                "Frying Pan{Non-Stick/Cast Iron/Stainless Steel}[20 cm/24 cm/28 cm]"
                "|Saucepan{Stainless Steel/Non-Stick/Copper-Base}[16 cm/18 cm/20 cm]"
                "|Casserole Dish{Enamelled Cast Iron/Ceramic}[20 cm/24 cm/28 cm]|Wok{Carbon Steel/Non-Stick}[30 cm/36 cm]"
                "|Chef's Knife{Stainless Steel/Damascus Steel/Ceramic}[15 cm/20 cm]|Chopping Board{Bamboo/Oak/Plastic}"
                "[Small/Large]|Mixing Bowl{Stainless Steel/Glass}[2 L/4 L]|Measuring Jug{Glass/Plastic}[500 ml/1 L]"
                "|Kitchen Scissors|Colander{Stainless Steel/Silicone}|Baking Tray{Non-Stick/Enamelled}[30 cm/38 cm]"
                "|Vegetable Peeler|Box Grater|Tin Opener|Springform Cake Tin[20 cm/24 cm/26 cm]",
                "",
                "",
                (3.99, 49.9),
                key="material",
                brands="Kitchen Craft|Casa Bella|Homestead|Kochwerk|Ferro & Co|Chef's Choice",
                about="Sturdy, dishwasher-safe kitchen equipment for everyday cooking.",
            ),
            leaf(
                "Home Textiles",
                "Bath Towel|Hand Towel|Bath Sheet|Fitted Sheet[Single/Double/King]|Duvet Cover Set[Single/Double/King]"
                "|Pillowcases[2 pack]|Throw Blanket|Cushion Cover[45 x 45 cm/50 x 50 cm]|Tea Towels[3 pack]|Bath Mat"
                "|Shower Curtain",
                "",
                "",
                (4.99, 39.9),
                colours=COLOURS_BASIC,
                materials="Organic Cotton|Linen|Cotton|Bamboo",
                brands="Linen House|Casa Bella|Homestead|Nordic Sleep|Soft Nest",
                about="Soft, breathable and machine washable at 60 °C.",
            ),
            leaf(
                "Storage & Organisation",
                "Storage Box with Lid|Laundry Basket|Velvet Clothes Hangers[10 pack/20 pack]|Vacuum Storage Bags[4 pack]"
                "|Shoe Rack|Drawer Organiser|Over-Door Hooks|Under-Bed Storage Bag",
                "",
                "",
                (2.99, 29.9),
                colours="White|Grey|Black|Natural|Transparent",
                brands="Homestead|Casa Bella|EcoHome|Tidy Living|Box & Co",
                about="Keeps cupboards, wardrobes and shelves neat and organised.",
            ),
        ),
    ),
    Department(
        "Home Appliances",
        brands=_split("Kochwerk|Voltra|Brightline|Hearth & Home|Zephyr|Nordwind|Elektra|Casa Bella"),
        sentences=(
            "Comes with a two-year {brand} warranty.",
            "Energy-efficient and easy to clean.",
            "Compact design that fits any kitchen or home.",
        ),
        weight=0.6,
        listing_factor=0.7,
        children=(
            leaf(
                "Kitchen Appliances",
                "Electric Kettle|2-Slice Toaster|4-Slice Toaster|Filter Coffee Machine|Espresso Machine|Capsule Coffee"
                " Machine|Blender|Hand Blender|Air Fryer|Stand Mixer|Hand Mixer|Sandwich Maker|Rice Cooker|Milk Frother",
                "|Compact|Stainless Steel|Digital",
                "",
                (14.9, 249.0),
                colours="Black|White|Silver|Cream|Red",
                about="Makes everyday cooking quicker and easier.",
            ),
            leaf(
                "Floorcare",
                "Cordless Vacuum Cleaner|Bagged Vacuum Cleaner|Bagless Vacuum Cleaner|Robot Vacuum|Steam Mop"
                "|Handheld Vacuum|Vacuum Cleaner Bags[5 pack]|Carpet Cleaner",
                "|Pet|Lightweight|Compact",
                "",
                (19.9, 399.0),
                about="Powerful suction on carpets and hard floors.",
            ),
            leaf(
                "Personal Care Appliances",
                "Hair Dryer|Hair Straightener|Curling Wand|Electric Toothbrush|Electric Shaver|Hair Clipper"
                "|Epilator|Bathroom Scale",
                "|Ionic|Travel|Rechargeable",
                "",
                (14.9, 149.0),
                colours="Black|White|Rose Gold|Silver",
                about="Salon results at home.",
            ),
            leaf(
                "Heating & Cooling",
                "Oil-Filled Radiator|Fan Heater|Desk Fan|Tower Fan|Dehumidifier|Humidifier|Air Purifier"
                "|Electric Blanket|Portable Air Conditioner",
                "|Quiet|Smart|Compact",
                "",
                (19.9, 399.0),
                about="Keeps your home comfortable in every season.",
            ),
            leaf(
                "Irons & Sewing",
                "Steam Iron|Steam Generator Iron|Garment Steamer|Ironing Board|Sewing Machine|Ironing Board Cover",
                "|Compact|Ceramic",
                "",
                (9.9, 199.0),
                about="Crisp, crease-free clothes in less time.",
            ),
        ),
    ),
    Department(
        "Hardware & Tools",
        brands=_split("Werkmann|ToolCraft|IronGrip|ProBuild|Stahlwerk|Hammerhead|Forge & Anvil|Bauhof|DuraFix|Brico"),
        sentences=(
            "Professional quality from {brand}, built to last.",
            "Suitable for DIY and trade use.",
            "Comes with a lifetime guarantee against manufacturing defects.",
            "Ergonomic design reduces hand fatigue.",
        ),
        weight=1.3,
        listing_factor=0.8,
        children=(
            leaf(
                "Hand Tools",
                "Claw Hammer|Screwdriver Set[6 pcs/12 pcs]|Adjustable Spanner|Combination Pliers|Spirit Level"
                "[60 cm/120 cm]|Tape Measure[5 m/8 m]|Utility Knife|Hex Key Set[9 pcs]|Socket Set[40 pcs/94 pcs]"
                "|Junior Hacksaw|Wood Chisel Set[4 pcs]|Pipe Wrench|Stud Finder|Wood Saw",
                "|Heavy Duty|Compact|Professional",
                "",
                (4.99, 49.9),
                about="Precision-forged for accurate, reliable work.",
            ),
            leaf(
                "Power Tools",
                "Cordless Drill Driver|Cordless Impact Driver|Cordless Jigsaw|Circular Saw|Angle Grinder"
                "|Random Orbital Sander|SDS Hammer Drill|Oscillating Multi-Tool|Cordless Screwdriver|Heat Gun"
                "|Glue Gun|Spare Battery 18 V[2.0 Ah/4.0 Ah]",
                "12 V|18 V|Brushless 18 V",
                "Body Only|with 1 x 2.0 Ah Battery|with 2 x 4.0 Ah Batteries",
                (24.9, 249.0),
                key="voltage",
                about="Powerful and light, with variable speed and an LED work light.",
            ),
            leaf(
                "Screws, Nails & Fixings",
                "Wood Screws|Wall Plugs|Round Wire Nails|Cavity Wall Anchors|Cable Ties|Picture Hooks"
                "|Nuts & Bolts Assortment|Drywall Screws|Hinges[2 pack]|Shelf Brackets[2 pack]|Washers",
                "4 x 40 mm|5 x 50 mm|6 x 60 mm|Assorted",
                "50 pcs|100 pcs|200 pcs",
                (0.99, 14.9),
                key="dimensions",
                about="Secure fixing in wood, masonry and plasterboard.",
            ),
            leaf(
                "Paint",
                "Interior Wall Paint|Ceiling Paint|Gloss Paint|Satin Wood Paint|Primer Undercoat|Wood Stain"
                "|Exterior Masonry Paint|Chalk Paint",
                "|Matt|Silk|One Coat",
                "1 L|2.5 L|5 L|10 L",
                (2.99, 59.9),
                colours="Brilliant White|Magnolia|Dove Grey|Sage Green|Navy Blue|Terracotta|Warm Beige|Charcoal",
                about="Smooth, even coverage with low odour; touch dry in one hour.",
            ),
            leaf(
                "Decorating Tools",
                "Paint Roller Set[3 pcs]|Paint Brush Set[5 pcs]|Masking Tape[25 m/50 m]|Decorator's Caulk[310 ml]"
                "|Ready-Mixed Filler[600 g]|Dust Sheet|Paint Tray|Wallpaper Paste[1 kg]|Filling Knife|Sandpaper[10 sheets]",
                "|Professional|Value",
                "",
                (1.49, 19.9),
                about="The right tools for a clean, professional finish.",
            ),
            leaf(
                "Adhesives & Sealants",
                "Super Glue[3 g/20 g]|Wood Glue[250 ml]|Silicone Sealant[310 ml]|Grab Adhesive[290 ml]"
                "|Epoxy Resin Glue[25 ml]|Duct Tape[25 m]|Expanding Foam[500 ml]|Double-Sided Tape[5 m]"
                "|Instant Repair Putty[56 g]",
                "|Clear|White|Extra Strong|Waterproof",
                "",
                (1.99, 12.9),
                about="A strong, durable bond on wood, metal, ceramics and most plastics.",
            ),
            leaf(
                "Workwear & Safety",
                "Work Gloves|Safety Glasses|FFP2 Dust Masks[5 pack/10 pack]|Ear Defenders|Knee Pads|Hi-Vis Vest"
                "|Safety Boots[EU 41/EU 42/EU 43/EU 44/EU 45]|Hard Hat",
                "",
                "S|M|L|XL",
                (2.99, 59.9),
                about="Certified protection on the job.",
            ),
            leaf(
                "Ladders & Workshop",
                "Aluminium Step Ladder[3 steps/5 steps]|Aluminium Extension Ladder[2 x 9 rungs/3 x 8 rungs]|Folding Workbench"
                "|Steel Tool Box|Tool Bag|Folding Sawhorse[pair]|Wall-Mounted Pegboard|Magnetic Tool Strip|Steel Shelving Unit",
                "|Heavy Duty|Compact",
                "",
                (14.9, 149.0),
                about="A stable, safe base for every job.",
            ),
        ),
    ),
    Department(
        "Plumbing",
        brands=_split("AquaFix|Hydrotec|FlowMaster|Sanitec|PipeLine Pro|Wasserwerk|Plumbright|DuraFix"),
        sentences=(
            "Fits standard European fittings; made by {brand}.",
            "Easy to install with everyday tools; no plumber needed.",
            "WRAS-approved materials, tested to 10 bar.",
            "Includes fitting instructions.",
        ),
        weight=0.8,
        listing_factor=0.8,
        children=(
            leaf(
                "Tap Repair",
                "Tap Washers|Tap Washer Assortment[10 pcs/30 pcs/50 pcs]|Tap Repair Kit|Faucet Repair Kit"
                "|Ceramic Disc Tap Cartridge|Mixer Tap Cartridge[35 mm/40 mm]|Tap Aerator|O-Ring Assortment"
                "[30 pcs/100 pcs]|Tap Reseating Tool|Tap Handle Replacement",
                "|Rubber|Fibre|Universal|Brass",
                '1/2"|3/4"|Assorted',
                (1.49, 14.9),
                about="Fixes a dripping tap or leaking faucet in minutes: replace the worn washer, seal or cartridge."
                "||Stops drips and saves water.",
                weight=1.5,
            ),
            leaf(
                "Taps & Mixers",
                "Kitchen Mixer Tap|Basin Mixer Tap|Bath Shower Mixer|Pillar Taps[pair]|Pull-Out Kitchen Tap"
                "|Outdoor Tap|Waterfall Basin Tap",
                "|Mono|Single Lever|Dual Lever",
                "",
                (24.9, 149.0),
                colours="Chrome|Brushed Steel|Matt Black|Brass",
                about="A drip-free ceramic cartridge for smooth, precise control.",
            ),
            leaf(
                "Pipes & Fittings",
                "Copper Pipe[2 m/3 m]|Compression Elbow|Push-Fit Coupler|Flexible Tap Connector[300 mm/500 mm]"
                "|Isolating Valve|PTFE Thread Seal Tape[12 m]|Bottle Trap|Plastic Waste Pipe[2 m]|Pipe Insulation[1 m]"
                "|Pipe Cutter|Radiator Valve|Radiator Bleed Key[2 pack]",
                "15 mm|22 mm|32 mm",
                "",
                (0.99, 24.9),
                key="diameter",
                about="Watertight joints for hot and cold water supply.",
            ),
            leaf(
                "Drains & Toilets",
                "Drain Unblocker Gel[1 L]|Sink Plunger|Drain Snake[5 m]|Toilet Seat|Cistern Fill Valve|Dual Flush Valve"
                "|Sink Strainer|Toilet Repair Kit|Toilet Brush|Drain Hair Catcher",
                "|Heavy Duty|Soft-Close|Universal",
                "",
                (1.99, 39.9),
                about="Clears blocked sinks, showers and toilets, and fixes running cisterns.",
            ),
            leaf(
                "Showers",
                "Shower Head|Shower Hose[1.5 m/2 m]|Shower Riser Rail Kit|Thermostatic Shower Valve|Shower Arm"
                "|Handheld Shower Head|Shower Mixer Set",
                "|Rainfall|Water-Saving|Anti-Limescale",
                "",
                (4.99, 89.9),
                colours="Chrome|Matt Black|White|Brushed Nickel",
                about="A powerful, even spray while saving water.",
            ),
        ),
    ),
    Department(
        "Electrical & Lighting",
        brands=_split("Voltra|Lumina|PowerCell|Helios|Brightline|Elektra|Kabelwerk|Spark & Wire|Nordlicht"),
        sentences=(
            "CE marked and tested to European safety standards by {brand}.",
            "Long life and low energy use.",
            "Easy to install; always switch off the power first.",
            "Two-year warranty.",
        ),
        weight=1.1,
        listing_factor=0.9,
        children=(
            leaf(
                "Light Bulbs",
                "LED Bulb E27|LED Candle Bulb E14|LED Spotlight GU10|LED Filament Bulb E27|Smart LED Bulb E27"
                "|LED Golf Ball Bulb E14|LED Tube T8",
                "Warm White 2700K|Cool White 4000K|Daylight 6500K|Dimmable Warm White",
                "470 lm (40 W equivalent)|806 lm (60 W equivalent)|1521 lm (100 W equivalent)|806 lm, 3 pack",
                (1.49, 14.9),
                key="colour_temperature",
                about="Uses up to 90% less energy than an incandescent bulb and lasts 15,000 hours.",
            ),
            leaf(
                "Batteries",
                "AA Alkaline Batteries|AAA Alkaline Batteries|9V Battery[1 pack/2 pack]|CR2032 Coin Cell Battery"
                "[1 pack/4 pack]|Rechargeable AA Batteries NiMH|Rechargeable AAA Batteries NiMH|C Batteries"
                "|D Batteries|LR44 Button Cells[2 pack/10 pack]|Battery Charger",
                "|Long-Lasting|Ultra",
                "2 pack|4 pack|8 pack|12 pack",
                (1.49, 19.9),
                about="Reliable power for remotes, toys, torches and wireless devices.",
            ),
            leaf(
                "Cables & Extension Leads",
                "4-Way Extension Lead|6-Way Extension Lead with USB|Extension Cable Reel|Surge Protector"
                "|Travel Adapter|Multi-Plug Adapter|Outdoor Extension Cable|Timer Plug",
                "|Switched|Surge-Protected|Outdoor",
                "1.5 m|3 m|5 m|10 m|25 m",
                (4.99, 39.9),
                key="feature",
                about="Safely powers several devices from one socket.",
            ),
            leaf(
                "Switches, Sockets & Wiring",
                "Light Switch{1 Gang/2 Gang}|Double Socket|Dimmer Switch|USB Wall Socket|Single Socket"
                "|Shaver Socket|Cooker Switch",
                "",
                "",
                (1.49, 39.9),
                colours="White|Brushed Steel|Black|Chrome",
                about="Modern switches and sockets with a slim, screwless face plate.",
            ),
            leaf(
                "Wiring & Accessories",
                "Junction Box|Electrical Tape[10 m/20 m]|Lever Connectors[10 pack/50 pack]|Plug Fuses 13 A[10 pack]"
                "|Cable Clips[100 pack]|Twin & Earth Cable 2.5 mm²[10 m/50 m]|Socket Tester|Voltage Tester Screwdriver"
                "|Cable Ties[100 pack]|Back Box[25 mm/35 mm]",
                "",
                "",
                (1.49, 39.9),
                about="Everything you need for safe home wiring jobs.",
            ),
            leaf(
                "Lamps & Torches",
                "LED Desk Lamp|Floor Lamp|Bedside Lamp|Ceiling Pendant Light|LED Strip Lights[2 m/5 m]|Outdoor Wall Light"
                "|Motion Sensor Light|LED Torch|Head Torch|Night Light|Camping Lantern|Rechargeable Work Light",
                "|Rechargeable|Dimmable|Solar",
                "",
                (4.99, 89.9),
                colours="Black|White|Brass|Natural Wood|Grey",
                about="Bright, flicker-free light exactly where you need it.",
            ),
            leaf(
                "Smart Home & Security",
                "Smart Plug[1 pack/4 pack]|Video Doorbell|Smart Thermostat|Motion Sensor|Smoke Alarm|Carbon Monoxide Alarm"
                "|Indoor Security Camera|Outdoor Security Camera|Smart Door Lock|Wi-Fi Range Extender|Door & Window"
                " Sensor",
                "|Wi-Fi|Battery-Powered|Zigbee",
                "",
                (9.99, 199.0),
                about="Control and protect your home from your phone.",
            ),
        ),
    ),
    Department(
        "Garden",
        brands=_split("Greenthumb|Gartenfreund|Bloom & Grow|Terra Garden|Hedgerow|Verdant|Willow Lane|Bauhof"),
        sentences=(
            "Trusted by gardeners for generations: {brand}.",
            "Weather-resistant and built for outdoor use.",
            "Helps your garden flourish all season long.",
            "Peat-free and kind to wildlife.",
        ),
        weight=1.1,
        listing_factor=0.8,
        children=(
            leaf(
                "Plants & Seeds",
                "Tomato Seeds|Basil Seeds|Wildflower Seed Mix|Sunflower Seeds|Lawn Seed[1 kg/5 kg]|Lavender Plant"
                "|Rose Bush|Potted Herbs|Succulent|Phalaenopsis Orchid|Peace Lily|Monstera|Snake Plant|Tulip Bulbs"
                "[10 pack/25 pack]|Strawberry Plants",
                "|Organic|Heirloom",
                "9 cm pot|12 cm pot|17 cm pot",
                (1.49, 29.9),
                about="Healthy, well-rooted and ready to plant out.",
            ),
            leaf(
                "Compost & Plant Care",
                "Multi-Purpose Compost|Peat-Free Compost|Potting Soil|Bark Mulch|Lawn Feed[5 kg/10 kg]|Tomato Feed[1 L]"
                "|Liquid Plant Food[1 L]|Horticultural Grit|Seed Compost|Slug Pellets[700 g]|Weed Killer[1 L/5 L]",
                "|Organic|Peat-Free",
                "10 L|40 L|50 L|70 L",
                (2.99, 19.9),
                about="Feeds plants for bigger blooms and better crops.",
            ),
            leaf(
                "Garden Tools",
                "Garden Spade|Garden Fork|Hand Trowel|Secateurs|Leaf Rake|Dutch Hoe|Loppers|Hedge Shears"
                "|Wheelbarrow{/Steel/Two-Wheeled}|Garden Gloves{/Leather/Thorn-Proof}[S/M/L]|Kneeler|Bulb Planter",
                "|Stainless Steel|Ergonomic|Professional",
                "",
                (4.99, 79.9),
                about="Tough, comfortable tools for digging, pruning and planting.",
            ),
            leaf(
                "Watering",
                "Garden Hose[15 m/25 m/50 m]|Hose Reel|Spray Gun Nozzle|Watering Can[5 L/10 L]|Oscillating Sprinkler"
                "|Hose Connector Set|Drip Irrigation Kit|Water Butt[100 L/210 L]|Expandable Hose[15 m/30 m]|Tap Timer",
                "|Anti-Kink|Heavy Duty",
                "",
                (3.99, 79.9),
                about="Keeps lawns, beds and pots watered with less effort.",
            ),
            leaf(
                "Outdoor Living & BBQ",
                "Folding Garden Chair|Garden Parasol|Charcoal Kettle Barbecue|Gas Barbecue|Lumpwood Charcoal[5 kg/10 kg]"
                "|Solar Garden Lights[4 pack/10 pack]|Bird Feeder|Terracotta Plant Pot[20 cm/30 cm]|Raised Planter|Fire Pit"
                "|Hammock|Outdoor Cushion|BBQ Tool Set",
                "|Compact|Large|Premium",
                "",
                (4.99, 299.0),
                about="Makes the most of summer evenings outdoors.",
            ),
            leaf(
                "Lawn Mowers & Garden Power Tools",
                "Cordless Lawn Mower|Electric Lawn Mower|Petrol Lawn Mower|Grass Trimmer|Hedge Trimmer|Leaf Blower"
                "|Pressure Washer|Robotic Lawn Mower|Chainsaw|Garden Shredder",
                "|Cordless 36 V|Cordless 18 V|Corded",
                "",
                (39.9, 699.0),
                about="Powerful, quiet and easy to handle.",
            ),
        ),
    ),
    Department(
        "Pets",
        brands=_split("Happy Paws|Whiskerco|Canis Premium|Feline Fine|Tierfreund|Wild Prairie|NutriPet|Petlife"),
        sentences=(
            "Complete, balanced nutrition developed by vets at {brand}.",
            "No added artificial colours or flavours.",
            "Loved by pets, trusted by owners.",
            "Made in Europe with responsibly sourced ingredients.",
        ),
        weight=0.9,
        listing_factor=0.9,
        children=(
            leaf(
                "Dog Food",
                "Adult Dry Dog Food|Wet Dog Food Tins|Puppy Dry Food|Senior Dog Food|Grain-Free Dog Food"
                "|Dog Treats[150 g/500 g]|Dental Chews[7 pack/28 pack]|Training Treats[200 g]",
                "Chicken|Beef|Lamb & Rice|Salmon|Turkey|Duck & Potato",
                "400 g|2 kg|6 x 400 g|12 kg",
                (1.49, 59.9),
                key="flavour",
                about="With real meat as the first ingredient for healthy muscles and a shiny coat.",
            ),
            leaf(
                "Cat Food",
                "Adult Dry Cat Food|Wet Cat Food Pouches|Kitten Food|Senior Cat Food|Cat Treats[60 g/180 g]"
                "|Sterilised Cat Food|Indoor Cat Food",
                "Tuna|Chicken|Salmon|Duck|Rabbit|Ocean Fish",
                "85 g|12 x 85 g|2 kg|4 kg",
                (0.59, 29.9),
                key="flavour",
                about="Tasty and complete, supporting healthy digestion and urinary tract health.",
            ),
            leaf(
                "Pet Care & Accessories",
                "Dog Lead|Dog Collar|Pet Bed|Rope Tug Toy|Cat Scratching Post|Stainless Steel Food Bowl|Cat Carrier"
                "|Dog Harness|Litter Tray|Squeaky Ball|Cat Teaser Wand",
                "",
                "S|M|L",
                (2.49, 49.9),
                colours="Red|Blue|Black|Grey|Green|Pink",
                about="Practical, durable accessories for happy pets.",
            ),
            leaf(
                "Pet Health & Hygiene",
                "Clumping Cat Litter[10 L/20 L]|Flea & Tick Spot-On[3 pipettes/6 pipettes]|Poop Bags[120 bags/300 bags]"
                "|Pet Shampoo[250 ml]|Worming Tablets[2 tablets/4 tablets]|Dental Care Water Additive[500 ml]"
                "|Puppy Training Pads[30 pack/100 pack]|Pet Stain & Odour Remover[750 ml]",
                "|For Dogs|For Cats|Natural",
                "",
                (2.49, 29.9),
                about="Keeps pets clean, healthy and free of fleas and ticks.",
            ),
            leaf(
                "Small Animals, Birds & Fish",
                "Rabbit Food|Guinea Pig Food|Meadow Hay|Wild Bird Seed Mix|Suet Balls[6 pack/30 pack]|Tropical Fish"
                " Flakes[100 ml/250 ml]|Aquarium Filter|Hamster Bedding|Small Animal Cage|Aquarium Water Conditioner",
                "",
                "500 g|1 kg|2.5 kg",
                (1.49, 59.9),
                about="Everything small pets, garden birds and fish need.",
            ),
        ),
    ),
    Department(
        "Baby & Toddler",
        brands=_split("Little Sprout|Babylove|Tiny Steps|Mama & Me|Cuddle Co|Kinderglück|Pure Baby|Bamboo Baby"),
        sentences=(
            "Gentle on delicate skin; dermatologically tested by {brand}.",
            "Free from fragrance, parabens and harsh chemicals.",
            "Trusted by midwives and parents.",
            "Safety tested to EN 71 standards.",
        ),
        weight=0.8,
        listing_factor=0.9,
        children=(
            leaf(
                "Nappies & Wipes",
                "Nappies{+Size 1 (2-5 kg)/+Size 2 (3-6 kg)/+Size 3 (6-10 kg)/+Size 4 (9-14 kg)/+Size 5 (11-16 kg)"
                "/+Size 6 (15+ kg)}|Nappy Pants{+Size 4/+Size 5/+Size 6}|Sensitive Baby Wipes[56 pack/4 x 56 pack]"
                "|Water Baby Wipes[60 pack/12 x 60 pack]|Nappy Cream[100 ml]|Swim Nappies{+Small/+Medium/+Large}"
                "|Nappy Bags[200 pack]",
                "",
                "22 pack|44 pack|88 pack",
                (1.49, 29.9),
                key="size_range",
                about="Up to 12 hours of dryness and a snug, leak-free fit.",
            ),
            leaf(
                "Baby Food & Formula",
                "First Infant Milk[800 g]|Follow-On Milk[800 g]|Baby Porridge[200 g]|Fruit Puree Pouch[90 g/4 x 90 g]"
                "|Vegetable Puree Jar[125 g/190 g]|Baby Rice Cakes[40 g]|Toddler Snack Bars[5 pack]|Baby Pasta[300 g]",
                "|Apple & Banana|Carrot & Sweet Potato|Mango & Pear|Organic",
                "",
                (0.79, 16.9),
                key="flavour",
                about="Nutritious food for little ones from 6 months.",
            ),
            leaf(
                "Feeding",
                "Anti-Colic Baby Bottle[150 ml/260 ml]|Sippy Cup|Silicone Bib|Weaning Spoons[4 pack]|Bottle Steriliser"
                "|Soother[2 pack]|Electric Breast Pump|Bottle Brush|Suction Plate",
                "|BPA-Free|Glass|0-6 months|6+ months",
                "",
                (2.49, 99.0),
                colours="Mint|Blush Pink|Grey|Sky Blue|White",
                about="Designed with parents for easy feeding and cleaning.",
            ),
            leaf(
                "Baby Care & Gear",
                "Baby Shampoo[200 ml]|Baby Lotion[200 ml]|Teething Gel[10 g]|Audio Baby Monitor|Video Baby Monitor"
                "|Baby Carrier|Changing Mat|Muslin Squares[3 pack]|Baby Sleeping Bag{+0-6 months/+6-18 months}"
                "|Bath Thermometer|Baby Nail Clippers",
                "",
                "",
                (2.49, 129.0),
                about="Gentle care and smart gear for the first years.",
            ),
        ),
    ),
    Department(
        "Toys & Games",
        brands=_split("Playwise|Brickworks|Funtastic|Wooden Wonders|Kidzone|Spielhaus|Puzzle Tree|Little Explorer"),
        sentences=(
            "Encourages creativity and imaginative play. By {brand}.",
            "Safety tested to EN 71; not suitable for children under 3 years (small parts).",
            "A perfect birthday or holiday gift.",
            "Batteries not included.",
        ),
        weight=0.9,
        listing_factor=0.6,
        children=(
            leaf(
                "Building & Construction Toys",
                "Building Bricks Set{Fire Station/Space Shuttle/Pirate Ship/City Bus/Castle}[250 pcs/500 pcs/1000 pcs]"
                "|Marble Run[80 pcs/150 pcs]|Magnetic Tiles[60 pcs/100 pcs]|Wooden Blocks[50 pcs/100 pcs]"
                "|Engineering Kit",
                "",
                "",
                (9.99, 89.9),
                key="theme",
                about="Builds fine motor skills and problem-solving.",
            ),
            leaf(
                "Board Games & Puzzles",
                "Jigsaw Puzzle{Mountain Lake/City at Night/World Map/Cats/Vintage Cars}[500 pieces/1000 pieces]"
                "|Chess Set|Card Game|Family Board Game|Dominoes|Memory Game|Strategy Board Game|Trivia Quiz Game"
                "|Floor Puzzle[24 pieces/48 pieces]",
                "",
                "",
                (6.99, 44.9),
                key="theme",
                about="Hours of fun for family game night.",
            ),
            leaf(
                "Dolls, Figures & Soft Toys",
                "Teddy Bear|Fashion Doll|Action Figure|Plush Unicorn|Wooden Dolls House|Soft Toy Dinosaur|Baby Doll"
                "|Plush Bunny|Play Figures Farm Set|Hand Puppet",
                "",
                "Small|Medium|Large",
                (5.99, 69.9),
                colours="Brown|Pink|Blue|Cream|Lilac",
                about="Soft, cuddly and made from safe, washable materials.",
            ),
            leaf(
                "Outdoor & Active Toys",
                "Kick Scooter|Balance Bike|Water Pistol|Frisbee|Stunt Kite|Bubble Machine|Sandpit Toy Set|Trampoline"
                "|Paddling Pool|Skipping Rope|Swing Seat",
                "",
                "",
                (3.99, 149.0),
                colours=COLOURS_BRIGHT,
                about="Gets kids outside, moving and playing.",
            ),
            leaf(
                "Arts & Crafts",
                "Colouring Pencils[12 pack/24 pack/48 pack]|Modelling Clay|Watercolour Paint Set|Wax Crayons[12 pack/24 pack]"
                "|Sticker Book|Bead Craft Kit|Finger Paints|Washable Felt-Tip Pens[12 pack/24 pack]|Play Dough[4 tubs/10 tubs]",
                "|Washable|Non-Toxic",
                "",
                (2.49, 24.9),
                about="Mess-friendly creative fun for budding artists.",
            ),
            leaf(
                "Baby & Preschool Toys",
                "Stacking Rings|Shape Sorter|Activity Cube|Rattle|Bath Toys[4 pack]|Pull-Along Toy|Musical Play Mat"
                "|Wooden Xylophone|Soft Building Blocks",
                "",
                "",
                (4.99, 49.9),
                colours="Rainbow|Pastel|Natural Wood",
                about="Stimulates little senses; suitable from 6 months.",
            ),
            leaf(
                "Video Games & Consoles",
                "Handheld Game Console|Gaming Controller|Gaming Headset|Racing Wheel|Console Charging Dock|Gaming Mouse",
                "",
                "",
                (19.9, 349.0),
                colours="Black|White|Red|Blue",
                about="Level up your gaming setup.",
            ),
        ),
    ),
    Department(
        "Sports & Outdoor",
        brands=_split("Peak Trail|Velocita|Summit Gear|AquaSport|Kraftwerk Fitness|Nordic Ridge|Ballix|Trekline"),
        sentences=(
            "Tested in the field by {brand} athletes.",
            "Lightweight, durable and built for the outdoors.",
            "Ideal for beginners and seasoned athletes alike.",
        ),
        weight=1.0,
        listing_factor=0.6,
        children=(
            leaf(
                "Fitness & Yoga",
                "Yoga Mat|Dumbbell Set[2 x 2 kg/2 x 5 kg/2 x 10 kg]|Kettlebell[8 kg/12 kg/16 kg]|Resistance Bands[3 pack/5 pack]"
                "|Skipping Rope|Foam Roller|Pull-Up Bar|Exercise Ball[65 cm/75 cm]|Ab Roller|Yoga Block",
                "",
                "",
                (4.99, 79.9),
                colours="Black|Purple|Teal|Grey|Coral",
                about="For home workouts, stretching and strength training.",
            ),
            leaf(
                "Cycling",
                'Bike Helmet[S/M/L]|Rechargeable Bike Lights Set|D-Lock|Folding Bike Lock|Inner Tube[26"/28"/700c]'
                "|Floor Pump|Mini Pump|Puncture Repair Kit|Bottle Cage|Bike Bell|Cycling Gloves[S/M/L/XL]|Chain Lube"
                "[100 ml]|Pannier Bag",
                "",
                "",
                (2.99, 79.9),
                about="Keeps you safe and rolling on every ride.",
            ),
            leaf(
                "Camping & Hiking",
                "2-Person Tent|4-Person Tent|Sleeping Bag|Self-Inflating Camping Mat|Hiking Backpack[30 L/45 L/65 L]"
                "|Camping Stove|Stainless Steel Water Bottle[750 ml/1 L]|Vacuum Flask[500 ml/1 L]|Trekking Poles"
                "|Camping Chair|Compass|Dry Bag[10 L/20 L]",
                "|Lightweight|Waterproof",
                "",
                (7.99, 249.0),
                colours="Olive|Orange|Navy|Grey|Red",
                about="Trail-ready gear for weekends under canvas and long hikes.",
            ),
            leaf(
                "Ball & Racket Sports",
                "Football[Size 3/Size 4/Size 5]|Basketball[Size 5/Size 6/Size 7]|Tennis Balls[4 pack]|Tennis Racket"
                "|Badminton Set|Table Tennis Bats[2 pack]|Volleyball|Padel Racket|Shin Guards[S/M/L]|Goalkeeper Gloves"
                "[Size 7/Size 8/Size 9/Size 10]",
                "",
                "",
                (4.99, 129.0),
                about="Match-quality equipment for training and play.",
            ),
            leaf(
                "Swimming & Water Sports",
                "Swimming Goggles|Swim Cap|Kickboard|Pull Buoy|Swim Fins[S/M/L]|Snorkel Set|Stand-Up Paddle Board"
                "|Wetsuit[S/M/L/XL]|Beach Towel",
                "|Anti-Fog|Kids",
                "",
                (3.99, 349.0),
                colours="Black|Blue|Pink|Clear|Yellow",
                about="Chlorine-resistant and comfortable in the water.",
            ),
            leaf(
                "Sports Nutrition",
                "Whey Protein Powder[500 g/1 kg/2.5 kg]|Vegan Protein Powder[500 g/1 kg]|Protein Bar[12 x 60 g/60 g]"
                "|Energy Gel[6 pack]|Electrolyte Tablets[20 tablets]|Creatine Monohydrate[300 g/500 g]|BCAA Powder[300 g]",
                "Chocolate|Vanilla|Strawberry|Unflavoured|Salted Caramel",
                "",
                (1.99, 49.9),
                key="flavour",
                about="Supports muscle recovery after training.",
            ),
        ),
    ),
    Department(
        "Apparel & Shoes",
        brands=_split(
            "Nordkind|Urban Thread|Atelier Blanc|Wildwood|Cotton Republic|Stride|Fjelltur|Maison Roux|Basic Line"
            "|Linden & Co"
        ),
        sentences=(
            "Designed by {brand} for everyday comfort.",
            "Machine washable at 30 °C.",
            "Regular fit; true to size.",
            "Made with responsibly sourced materials.",
        ),
        weight=1.5,
        listing_factor=0.5,
        children=(
            group(
                "Women's Clothing",
                leaf(
                    "Women's Tops & Knitwear",
                    "Women's T-Shirt|Women's Blouse|Women's Knit Jumper|Women's Cardigan|Women's Hoodie|Women's Vest Top",
                    "",
                    SIZES_CLOTHES,
                    (9.99, 69.9),
                    colours=COLOURS_BASIC,
                    materials="Organic Cotton|Linen|Merino Wool|Cashmere Blend|Recycled Polyester|Viscose",
                ),
                leaf(
                    "Women's Trousers, Dresses & Skirts",
                    "Women's Straight Jeans|Women's Skinny Jeans|Women's Leggings|Women's Wide-Leg Trousers"
                    "|Women's Summer Dress|Women's Midi Skirt|Women's Jumpsuit",
                    "|High-Waisted|Relaxed Fit|Organic Cotton",
                    SIZES_CLOTHES,
                    (14.9, 89.9),
                    colours=COLOURS_BASIC,
                ),
                leaf(
                    "Women's Coats & Jackets",
                    "Women's Rain Jacket|Women's Puffer Jacket|Women's Wool Coat|Women's Denim Jacket|Women's Trench Coat"
                    "|Women's Softshell Jacket",
                    "|Waterproof|Lightweight|Insulated",
                    SIZES_CLOTHES,
                    (39.9, 199.0),
                    colours=COLOURS_BASIC,
                ),
            ),
            group(
                "Men's Clothing",
                leaf(
                    "Men's Tops & Knitwear",
                    "Men's T-Shirt|Men's Polo Shirt|Men's Oxford Shirt|Men's Crew Neck Jumper|Men's Hoodie"
                    "|Men's Flannel Shirt|Men's Long-Sleeve Top",
                    "",
                    SIZES_CLOTHES,
                    (9.99, 69.9),
                    colours=COLOURS_BASIC,
                    materials="Organic Cotton|Linen|Merino Wool|Cotton Piqué|Recycled Polyester",
                ),
                leaf(
                    "Men's Trousers & Shorts",
                    "Men's Slim Jeans|Men's Regular Jeans|Men's Chinos|Men's Cargo Trousers|Men's Joggers"
                    "|Men's Chino Shorts|Men's Swim Shorts",
                    "",
                    "W30 L32|W32 L32|W34 L32|W36 L32|W38 L34",
                    (14.9, 79.9),
                    colours=COLOURS_BASIC,
                ),
                leaf(
                    "Men's Coats & Jackets",
                    "Men's Rain Jacket|Men's Puffer Jacket|Men's Wool Overcoat|Men's Bomber Jacket|Men's Softshell Jacket"
                    "|Men's Gilet",
                    "|Waterproof|Lightweight|Insulated",
                    SIZES_CLOTHES,
                    (39.9, 199.0),
                    colours=COLOURS_BASIC,
                ),
            ),
            leaf(
                "Kids' Clothing",
                "Kids' T-Shirt|Kids' Pyjamas|Kids' Rain Jacket|Kids' Joggers|Kids' Sweatshirt|Kids' Snowsuit"
                "|Kids' Jeans|Baby Bodysuits[3 pack]|Kids' Swimsuit",
                "",
                "86/92|98/104|110/116|122/128|134/140|146/152",
                (5.99, 49.9),
                colours=COLOURS_BRIGHT,
            ),
            leaf(
                "Shoes",
                "Running Shoes|Trainers|Leather Ankle Boots|Chelsea Boots|Sandals|Slippers|Hiking Boots|Canvas Sneakers"
                "|Wellington Boots|Loafers|Flip-Flops|Kids' Trainers{/Light-Up/Velcro}[EU 28/EU 30/EU 32/EU 34]",
                "|Women's|Men's|Waterproof",
                SIZES_SHOES,
                (14.9, 149.0),
                key="style",
                colours="Black|White|Brown|Navy|Grey|Tan",
                about="Cushioned insole and flexible, grippy outsole.",
                weight=1.5,
            ),
            leaf(
                "Socks & Underwear",
                "Ankle Socks[3 pack/5 pack]|Crew Socks[3 pack/5 pack]|Boxer Briefs[3 pack]|Briefs[3 pack/5 pack]"
                "|Thermal Socks[2 pack]|Tights[2 pack]|Sports Bra|Hiking Socks[2 pack]",
                "",
                "S|M|L|XL",
                (4.99, 29.9),
                colours="Black|White|Grey|Navy|Mixed",
                materials="Cotton|Bamboo|Merino Wool|Modal",
            ),
            leaf(
                "Bags & Accessories",
                "Beanie Hat|Knitted Scarf|Leather Belt|Touchscreen Gloves|Baseball Cap|Compact Umbrella|Sunglasses"
                "|Everyday Backpack|Canvas Tote Bag|Leather Wallet|Crossbody Bag|Weekend Holdall",
                "",
                "",
                (4.99, 89.9),
                colours=COLOURS_BASIC,
            ),
        ),
    ),
    Department(
        "Electronics & Phones",
        brands=_split("Voltra|Sonique|Nexon|Pixelon|Kabelwerk|Auralis|Tekno|ZenByte|Lumix Labs|PowerCell"),
        sentences=(
            "Includes a two-year {brand} warranty.",
            "Universal compatibility with iOS and Android devices.",
            "Plug and play; no drivers needed.",
            "Ships with a quick-start guide.",
        ),
        weight=1.3,
        listing_factor=0.6,
        children=(
            leaf(
                "Mobile Phones",
                'Smartphone 6.1"{+128 GB/+256 GB}|Smartphone 6.7"{+256 GB/+512 GB}|Budget Smartphone{+64 GB/+128 GB}'
                "|Rugged Smartphone{+128 GB}|Senior Phone with Big Buttons|Foldable Smartphone{+256 GB/+512 GB}",
                "",
                "",
                (89.0, 1199.0),
                key="storage",
                colours="Midnight Black|Arctic White|Ocean Blue|Sage Green|Lavender",
                about="A bright OLED display, all-day battery and a sharp dual camera.",
            ),
            leaf(
                "Phone Accessories",
                "Phone Case|Tempered Glass Screen Protector[1 pack/2 pack]|USB-C Charging Cable[1 m/2 m]"
                "|USB-C to Lightning Cable[1 m/2 m]|20 W USB-C Fast Charger|65 W GaN Charger|Wireless Charging Pad"
                "|Power Bank[10000 mAh/20000 mAh]|Car Phone Mount|Car Charger|Phone Grip Stand",
                "|MagSafe-Compatible|Slim|Rugged",
                "",
                (4.99, 49.9),
                colours="Black|Clear|Blue|Pink|White|Green",
                about="Charges and protects your smartphone.",
                weight=1.5,
            ),
            leaf(
                "Headphones & Speakers",
                "True Wireless Earbuds|Noise-Cancelling Over-Ear Headphones|Wired Earphones|Bluetooth Speaker"
                "|Waterproof Bluetooth Speaker|Soundbar|Smart Speaker|Sports Earbuds|Kids' Headphones",
                "|Noise-Cancelling|Compact|Bass Boost",
                "",
                (9.99, 299.0),
                colours="Black|White|Navy|Sand|Red",
                about="Rich sound with deep bass and crisp highs; up to 30 hours of battery.",
            ),
            leaf(
                "Computer Accessories",
                "Wireless Mouse|Mechanical Keyboard|Wireless Keyboard & Mouse Set|USB-C Hub 7-in-1|Laptop Stand|HD Webcam"
                "|USB Flash Drive[32 GB/64 GB/128 GB]|Portable SSD[500 GB/1 TB/2 TB]|microSD Card[64 GB/128 GB/256 GB]"
                '|Laptop Sleeve 14"|HDMI Cable[1 m/2 m/5 m]|Ethernet Cable[2 m/5 m/10 m]|Ink Cartridge Black|Mouse Pad',
                "",
                "",
                (4.99, 179.0),
                about="Boosts productivity at your desk and on the go.",
            ),
            leaf(
                "Laptops & Tablets",
                '13" Laptop{+8 GB RAM, 256 GB SSD/+16 GB RAM, 512 GB SSD}|15.6" Laptop{+8 GB RAM, 512 GB SSD/+16 GB RAM, 1 TB SSD}'
                '|10" Tablet{+64 GB/+128 GB}|E-Reader|Chromebook|Tablet Case|Stylus Pen',
                "",
                "",
                (29.9, 1299.0),
                key="configuration",
                colours="Space Grey|Silver|Black",
                about="Fast, light and ready for work, study and streaming.",
            ),
            leaf(
                "TV & Home Entertainment",
                '4K Smart TV{43"/50"/55"/65"}|Streaming Stick 4K|TV Wall Bracket{+32-55"/+43-75"}|Universal Remote'
                "|Indoor TV Aerial|Projector|Blu-ray Player|Turntable",
                "",
                "",
                (14.9, 899.0),
                key="screen_size",
                about="Big-screen entertainment with crisp picture and sound.",
            ),
            leaf(
                "Cameras & Wearables",
                "Smartwatch|Fitness Tracker|Action Camera|Instant Camera|Instant Film[10 shots/20 shots]|Camera Tripod"
                "|Camera Bag|Dash Cam|Ring Light",
                "",
                "",
                (9.99, 349.0),
                colours="Black|Silver|Rose Gold|Olive",
                about="Capture and track every moment.",
            ),
        ),
    ),
    Department(
        "Books & Stationery",
        brands=_split(
            "Penfold|Quill & Co|Papierwerk|Inkwell|Leuchtturm Press|Harbour Books|Lantern House|Northwind Publishing"
            "|Paper Fox"
        ),
        sentences=(
            "Published by {brand}.",
            "Printed on FSC-certified paper.",
            "A thoughtful gift for readers, writers and students.",
        ),
        weight=1.0,
        listing_factor=0.6,
        children=(
            leaf(
                "Fiction",
                "The Silent Harbour|A Winter in Lisbon|The Glass Orchard|Midnight on the Canal|The Last Lighthouse Keeper"
                "|Salt and Saffron|The Cartographer's Daughter|Under the Linden Trees|The Night Ferry|Red Sky at Morning"
                "|The Paper Garden|A House by the River|The Clockmaker's Secret|Stormbound|The Quiet Detective",
                "+(Paperback)|+(Hardcover)|+(Large Print)",
                "",
                (8.99, 24.9),
                key="format",
                about="A gripping novel, shortlisted for a national fiction prize.",
            ),
            leaf(
                "Non-Fiction",
                "A Short History of Cities|The Science of Sleep|Thinking in Systems: A Primer for Beginners"
                "|Walking the Alps|The Hidden Life of Fungi|Money Made Simple|The Art of Repair|Rivers of Europe"
                "|How We Learn|The Bicycle Book|Mindful Running|Small Spaces, Big Ideas",
                "+(Paperback)|+(Hardcover)",
                "",
                (9.99, 29.9),
                key="format",
                about="Clear, engaging and thoroughly researched.",
            ),
            leaf(
                "Cookbooks",
                "Plant-Based Every Day|One-Pot Suppers|The Sourdough Year|Italian Home Cooking|Fermentation Made Easy"
                "|Quick Family Dinners|The Baking Bible|Street Food of Asia|Budget Meal Prep|Summer Salads",
                "+(Paperback)|+(Hardcover)",
                "",
                (12.9, 34.9),
                key="format",
                about="Over 100 recipes with step-by-step photography.",
            ),
            leaf(
                "Children's Books",
                "The Very Busy Fox|Goodnight, Little Owl|Dino Detectives|The Moon Rabbit|First Words Board Book"
                "|My Big Book of Trucks|Luna and the Lost Kite|Fairy Tales Treasury|The Brave Little Boat"
                "|Sticker Atlas of the World",
                "+(Paperback)|+(Hardcover)|+(Board Book)",
                "",
                (4.99, 16.9),
                key="format",
                about="Beautifully illustrated; perfect for reading aloud at bedtime.",
            ),
            leaf(
                "Travel Guides & Maps",
                "Berlin City Guide|Paris Pocket Guide|London Walks|Alps Hiking Map|Europe by Train|Road Atlas of Europe"
                "|Amsterdam Cycling Guide|Vienna City Guide|Baltic Coast Guide|Munich & Bavaria Guide",
                "|2025 Edition|Pocket",
                "",
                (6.99, 24.9),
                key="edition",
                about="Up-to-date tips, maps and itineraries.",
            ),
            leaf(
                "Notebooks & Paper",
                "A5 Dotted Notebook|A5 Lined Notebook|A4 Lined Refill Pad|Sticky Notes[6 pads/12 pads]"
                "|Spiral Notebook|Bullet Journal|Index Cards[100 pack]|Sketchbook A4|Weekly Planner|Pocket Diary",
                "|Hardcover|Recycled|Softcover",
                "",
                (1.49, 24.9),
                colours="Black|Navy|Sage|Terracotta|Kraft",
                about="Smooth, bleed-resistant paper for notes, sketches and plans.",
            ),
            leaf(
                "Pens & Writing",
                "Ballpoint Pens[4 pack/10 pack]|Gel Pens[6 pack/12 pack]|Fountain Pen|Ink Cartridges[6 pack]"
                "|Highlighters[4 pack/6 pack]|HB Pencils[12 pack]|Permanent Markers[4 pack]|Fineliners[10 pack/20 pack]"
                "|Whiteboard Markers[4 pack]|Mechanical Pencil",
                "|Fine|Medium|Assorted Colours",
                "",
                (1.49, 29.9),
                about="Smooth writing with quick-drying, smudge-free ink.",
            ),
            leaf(
                "Office & School Supplies",
                "Stapler|Staples[1000 pcs/5000 pcs]|Paper Clips[100 pcs]|Office Scissors|Glue Stick[3 pack]|Clear Tape"
                "[3 rolls]|Ring Binder A4|Lever Arch File|Desk Organiser|Pocket Calculator|Scientific Calculator"
                "|2-Hole Punch|Pencil Case|School Backpack|Geometry Set|Erasers[3 pack]|A4 Printer Paper"
                "[500 sheets/5 x 500 sheets]|C5 Envelopes[50 pack/500 pack]",
                "",
                "",
                (0.99, 39.9),
                about="Reliable supplies for office, school and home.",
            ),
            leaf(
                "Cards & Gift Wrap",
                "Birthday Card|Thank You Cards[10 pack]|Gift Wrap Roll[3 m/5 m]|Gift Bag{Small/Medium/Large}"
                "|Satin Ribbon[10 m]|Gift Tags[20 pack]|Wedding Card|Congratulations Card|Party Balloons[20 pack]",
                "",
                "",
                (0.99, 9.99),
                colours="Gold|Silver|Kraft|Red|Blue|Floral",
                about="Make every gift special.",
            ),
        ),
    ),
)


# Store types: which departments each carries, and how many listings relative to the scale's average.
@dataclass(frozen=True)
class StoreType:
    key: str
    departments: tuple[str, ...]
    listing_factor: float
    # templates: {place} is the neighbourhood or town, {city} the city; "de:" marks German-speaking countries only
    names: tuple[str, ...]
    zone_weights: tuple[float, float, float]  # core, suburbs, outskirts


_FOOD = ("Grocery", "Fresh Produce", "Dairy, Eggs & Plant-Based", "Bakery", "Meat, Fish & Deli", "Frozen", "Drinks")

STORE_TYPES: tuple[StoreType, ...] = (
    StoreType(
        "supermarket",
        (*_FOOD, "Household", "Beauty & Personal Care", "Pharmacy & Health", "Baby & Toddler", "Pets"),
        2.2,
        (
            "FreshCo {place}",
            "ValueMart {place}",
            "Green Basket Supermarket {place}",
            "de:Marktkauf {place}",
            "Daily Fresh {place}",
            "Family Market {place}",
        ),
        (0.25, 0.4, 0.35),
    ),
    StoreType(
        "grocery",
        ("Grocery", "Fresh Produce", "Dairy, Eggs & Plant-Based", "Bakery", "Drinks", "Household"),
        0.9,
        (
            "Corner Grocer {place}",
            "{place} Grocery",
            "de:Mini Markt {place}",
            "The Pantry {place}",
            "Fresh & Friendly {place}",
        ),
        (0.6, 0.3, 0.1),
    ),
    StoreType(
        "organic",
        ("Grocery", "Fresh Produce", "Dairy, Eggs & Plant-Based", "Bakery", "Drinks", "Beauty & Personal Care"),
        0.9,
        ("de:Bio Markt {place}", "Green Leaf Organics {place}", "de:Naturkost {place}", "Wholesome {place}"),
        (0.7, 0.25, 0.05),
    ),
    StoreType(
        "convenience",
        ("Grocery", "Dairy, Eggs & Plant-Based", "Bakery", "Drinks", "Household", "Pharmacy & Health"),
        0.35,
        ("de:Späti {place}", "QuickStop {place}", "24/7 Express {place}", "de:Kiosk {place}", "Corner Shop {place}"),
        (0.75, 0.2, 0.05),
    ),
    StoreType(
        "pharmacy",
        ("Pharmacy & Health", "Beauty & Personal Care", "Baby & Toddler"),
        0.5,
        (
            "{place} Pharmacy",
            "de:Apotheke am {place}",
            "Lion Pharmacy {place}",
            "Green Cross Pharmacy {place}",
            "de:Stadt-Apotheke {place}",
        ),
        (0.55, 0.35, 0.1),
    ),
    StoreType(
        "drugstore",
        ("Beauty & Personal Care", "Household", "Pharmacy & Health", "Baby & Toddler", "Pets"),
        0.9,
        ("de:Drogerie {place}", "Care & Beauty {place}", "de:Rossweg Drogerie {place}"),
        (0.5, 0.35, 0.15),
    ),
    StoreType(
        "hardware",
        ("Hardware & Tools", "Plumbing", "Electrical & Lighting", "Garden", "Household"),
        1.4,
        (
            "{place} Hardware",
            "ToolBox DIY {place}",
            "de:Baumarkt {place}",
            "Nuts & Bolts {place}",
            "Handyman's Depot {place}",
        ),
        (0.2, 0.4, 0.4),
    ),
    StoreType(
        "garden_centre",
        ("Garden", "Pets"),
        0.8,
        ("{place} Garden Centre", "de:Gartencenter {place}", "Green Fingers {place}"),
        (0.05, 0.35, 0.6),
    ),
    StoreType(
        "pet",
        ("Pets",),
        0.4,
        ("Paws & Claws {place}", "de:Zoo & Co {place}", "{place} Pet Supplies", "Happy Tails {place}"),
        (0.45, 0.4, 0.15),
    ),
    StoreType(
        "electronics",
        ("Electronics & Phones", "Electrical & Lighting", "Home Appliances"),
        0.9,
        ("TechPoint {place}", "de:Elektro {place}", "Phone & More {place}", "Circuit City {place}"),
        (0.45, 0.35, 0.2),
    ),
    StoreType(
        "bookshop",
        ("Books & Stationery", "Toys & Games"),
        0.5,
        ("{place} Books", "de:Buchhandlung {place}", "Paper & Ink {place}", "The Reading Room {place}"),
        (0.7, 0.25, 0.05),
    ),
    StoreType(
        "toy",
        ("Toys & Games", "Baby & Toddler"),
        0.5,
        ("Toy Chest {place}", "de:Spielwaren {place}", "Little Wonders {place}"),
        (0.5, 0.35, 0.15),
    ),
    StoreType(
        "sports",
        ("Sports & Outdoor", "Apparel & Shoes"),
        0.7,
        ("{place} Sports", "Peak Outdoor {place}", "de:Sport Haus {place}", "Active Life {place}"),
        (0.4, 0.4, 0.2),
    ),
    StoreType(
        "fashion",
        ("Apparel & Shoes",),
        0.5,
        ("Thread & Co {place}", "de:Mode {place}", "{place} Boutique", "Shoe Box {place}"),
        (0.7, 0.25, 0.05),
    ),
    StoreType(
        "bakery",
        ("Bakery", "Drinks"),
        0.15,
        ("de:Bäckerei {place}", "{place} Bakehouse", "Morning Crust {place}"),
        (0.7, 0.25, 0.05),
    ),
    StoreType(
        "department_store",
        (
            "Household",
            "Home Appliances",
            "Beauty & Personal Care",
            "Toys & Games",
            "Apparel & Shoes",
            "Electronics & Phones",
            "Books & Stationery",
            "Sports & Outdoor",
            "Baby & Toddler",
        ),
        3.0,
        ("de:Kaufhaus {city} {place}", "de:Galeria {place}", "{city} Department Store {place}"),
        (0.8, 0.2, 0.0),
    ),
)

# Relative share of each store type (before zone weighting).
STORE_TYPE_SHARE: dict[str, float] = {
    "supermarket": 0.16,
    "grocery": 0.14,
    "organic": 0.05,
    "convenience": 0.13,
    "pharmacy": 0.10,
    "drugstore": 0.05,
    "hardware": 0.06,
    "garden_centre": 0.03,
    "pet": 0.04,
    "electronics": 0.05,
    "bookshop": 0.04,
    "toy": 0.03,
    "sports": 0.04,
    "fashion": 0.05,
    "bakery": 0.05,
    "department_store": 0.02,
}


# Products every demo-scale catalogue (and above) contains, with high popularity, for tests and demos.
@dataclass(frozen=True)
class Anchor:
    leaf: str
    item: str
    variant: str = ""
    size: str = ""


ANCHORS: tuple[Anchor, ...] = (
    Anchor("Tap Repair", "Tap Washers", "Rubber", '1/2"'),
    Anchor("Tap Repair", "Tap Washer Assortment", "", "30 pcs"),
    Anchor("Tap Repair", "Faucet Repair Kit", "Universal", '1/2"'),
    Anchor("Tap Repair", "Tap Repair Kit", "", "Assorted"),
    Anchor("Tap Repair", "Ceramic Disc Tap Cartridge", "", '1/2"'),
    Anchor("Plant-Based Drinks", "Oat Drink", "+Barista", "1 L"),
    Anchor("Plant-Based Drinks", "Oat Milk", "+Original", "1 L"),
    Anchor("Plant-Based Drinks", "Oat Drink", "Unsweetened", "1 L"),
    Anchor("Plant-Based Drinks", "Almond Drink", "Unsweetened", "1 L"),
    Anchor("Plant-Based Drinks", "Soy Drink", "+Original", "1 L"),
    Anchor("Pain Relief", "Paracetamol 500 mg Tablets", "", "20 pack"),
    Anchor("Pain Relief", "Ibuprofen 400 mg Tablets", "Film-Coated", "20 pack"),
    Anchor("Pain Relief", "Ibuprofen 200 mg Tablets", "", "20 pack"),
    Anchor("Pain Relief", "Headache Relief Tablets", "Fast-Acting", "16 pack"),
    Anchor("Pain Relief", "Aspirin 500 mg Tablets", "", "20 pack"),
    Anchor("Milk", "Whole Milk", "Fresh", "1 L"),
    Anchor("Milk", "Lactose-Free Milk", "", "1 L"),
    Anchor("Fruit", "Bananas", "", "1 kg"),
    Anchor("Bread", "Sourdough Loaf", "", "750 g"),
    Anchor("Eggs", "Free-Range Eggs", "Medium", "10 pack"),
    Anchor("Cold & Flu", "Cough Syrup", "Honey & Lemon", "100 ml"),
    Anchor("Batteries", "AA Alkaline Batteries", "", "4 pack"),
    Anchor("Light Bulbs", "LED Bulb E27", "Warm White 2700K", "806 lm (60 W equivalent)"),
    Anchor("Phone Accessories", "USB-C Charging Cable", "", "1 m"),
    Anchor("Power Tools", "Cordless Drill Driver", "18 V", "with 1 x 2.0 Ah Battery"),
    Anchor("Watering", "Garden Hose", "", "25 m"),
    Anchor("Dog Food", "Adult Dry Dog Food", "Chicken", "2 kg"),
    Anchor("Cat Food", "Wet Cat Food Pouches", "Salmon", "12 x 85 g"),
    Anchor("Nappies & Wipes", "Nappies", "+Size 4 (9-14 kg)", "44 pack"),
    Anchor("Coffee", "Whole Bean Coffee", "Medium Roast", "1 kg"),
    Anchor("Shoes", "Running Shoes", "Women's", "EU 39"),
    Anchor("Cleaning", "Limescale Remover", "", "750 ml"),
)


# Streets by country, for believable addresses.
STREETS: dict[str, tuple[str, ...]] = {
    "DE": _split(
        "Hauptstraße|Bahnhofstraße|Gartenstraße|Schulstraße|Dorfstraße|Bergstraße|Lindenstraße|Kirchstraße"
        "|Friedrichstraße|Schillerstraße|Goethestraße|Wilhelmstraße|Karl-Marx-Straße|Marktplatz|Parkstraße"
        "|Rosenweg|Am Anger|Kastanienallee|Torstraße|Sonnenallee|Hermannstraße|Brunnenstraße|Müllerstraße"
        "|Invalidenstraße|Oranienstraße|Schönhauser Allee|Frankfurter Allee|Kantstraße|Leipziger Straße"
    ),
    "AT": _split(
        "Hauptstraße|Mariahilfer Straße|Landstraßer Hauptstraße|Kirchengasse|Bahnhofstraße|Wiedner Hauptstraße"
        "|Neubaugasse|Favoritenstraße|Schulgasse|Lindengasse"
    ),
    "GB": _split(
        "High Street|Station Road|Church Lane|Victoria Road|Park Road|Green Lane|Manor Road|Queen's Road|King Street"
        "|Mill Lane|Market Street|Albert Road|London Road|Chapel Street|The Broadway"
    ),
    "FR": _split(
        "Rue de la République|Avenue Victor Hugo|Rue de la Paix|Boulevard Voltaire|Rue du Faubourg Saint-Antoine"
        "|Rue de Rivoli|Avenue Jean Jaurès|Rue des Écoles|Rue Oberkampf|Rue de la Gare"
    ),
    "NL": _split(
        "Kerkstraat|Dorpsstraat|Stationsweg|Molenstraat|Prinsengracht|Haarlemmerstraat|Ferdinand Bolstraat"
        "|Overtoom|Marktplein|Nieuwstraat"
    ),
    "US": _split(
        "Main Street|Broadway|Park Avenue|Oak Street|Maple Avenue|Elm Street|Washington Avenue|Atlantic Avenue"
        "|5th Avenue|Bedford Avenue|Court Street|Smith Street|Amsterdam Avenue|Lexington Avenue|Grand Street"
    ),
}
STREETS_DEFAULT = STREETS["GB"]

# Approximate neighbourhood centres for well-known cities (name, lat, lon).
NEIGHBOURHOODS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "Berlin": (
        ("Mitte", 52.5200, 13.4050),
        ("Kreuzberg", 52.4986, 13.4033),
        ("Friedrichshain", 52.5158, 13.4545),
        ("Prenzlauer Berg", 52.5390, 13.4240),
        ("Neukölln", 52.4811, 13.4354),
        ("Schöneberg", 52.4839, 13.3536),
        ("Charlottenburg", 52.5166, 13.3041),
        ("Wedding", 52.5500, 13.3667),
        ("Moabit", 52.5300, 13.3420),
        ("Pankow", 52.5692, 13.4015),
        ("Steglitz", 52.4560, 13.3290),
        ("Tempelhof", 52.4663, 13.3850),
        ("Treptow", 52.4910, 13.4700),
        ("Lichtenberg", 52.5150, 13.4990),
        ("Wilmersdorf", 52.4870, 13.3190),
        ("Spandau", 52.5360, 13.2000),
        ("Köpenick", 52.4450, 13.5750),
        ("Zehlendorf", 52.4340, 13.2590),
        ("Marzahn", 52.5450, 13.5640),
        ("Reinickendorf", 52.5900, 13.3300),
        ("Weißensee", 52.5530, 13.4650),
        ("Friedenau", 52.4710, 13.3280),
        ("Alt-Treptow", 52.4920, 13.4500),
        ("Tiergarten", 52.5140, 13.3500),
        ("Dahlem", 52.4590, 13.2880),
        ("Hellersdorf", 52.5360, 13.6050),
        ("Tegel", 52.5890, 13.2850),
        ("Adlershof", 52.4350, 13.5450),
        ("Mariendorf", 52.4400, 13.3870),
        ("Rudow", 52.4170, 13.4960),
    ),
    "Hamburg": (
        ("Altona", 53.5503, 9.9350),
        ("St. Pauli", 53.5550, 9.9640),
        ("Eimsbüttel", 53.5740, 9.9560),
        ("Winterhude", 53.5940, 10.0030),
        ("Eppendorf", 53.5900, 9.9850),
        ("Barmbek", 53.5850, 10.0400),
        ("Ottensen", 53.5530, 9.9250),
        ("Wandsbek", 53.5800, 10.0850),
        ("Harburg", 53.4600, 9.9800),
        ("HafenCity", 53.5410, 10.0000),
        ("St. Georg", 53.5550, 10.0120),
        ("Bergedorf", 53.4880, 10.2140),
    ),
    "Munich": (
        ("Schwabing", 48.1650, 11.5850),
        ("Maxvorstadt", 48.1500, 11.5700),
        ("Haidhausen", 48.1290, 11.6000),
        ("Glockenbachviertel", 48.1310, 11.5700),
        ("Sendling", 48.1180, 11.5400),
        ("Neuhausen", 48.1550, 11.5300),
        ("Bogenhausen", 48.1520, 11.6150),
        ("Pasing", 48.1450, 11.4600),
        ("Giesing", 48.1100, 11.5850),
        ("Altstadt", 48.1374, 11.5755),
        ("Westend", 48.1360, 11.5350),
        ("Trudering", 48.1230, 11.6700),
    ),
    "London": (
        ("Camden", 51.5390, -0.1426),
        ("Islington", 51.5362, -0.1033),
        ("Hackney", 51.5450, -0.0553),
        ("Shoreditch", 51.5260, -0.0780),
        ("Brixton", 51.4613, -0.1156),
        ("Clapham", 51.4620, -0.1380),
        ("Notting Hill", 51.5090, -0.1960),
        ("Greenwich", 51.4826, -0.0077),
        ("Stratford", 51.5416, -0.0030),
        ("Peckham", 51.4740, -0.0690),
        ("Wimbledon", 51.4214, -0.2064),
        ("Soho", 51.5136, -0.1365),
        ("Fulham", 51.4730, -0.2050),
        ("Hammersmith", 51.4927, -0.2236),
        ("Walthamstow", 51.5830, -0.0190),
        ("Lewisham", 51.4610, -0.0130),
        ("Kensington", 51.5000, -0.1920),
        ("Canary Wharf", 51.5054, -0.0235),
    ),
    "Paris": (
        ("Le Marais", 48.8590, 2.3610),
        ("Montmartre", 48.8867, 2.3431),
        ("Belleville", 48.8720, 2.3770),
        ("Bastille", 48.8530, 2.3690),
        ("Saint-Germain", 48.8540, 2.3330),
        ("Montparnasse", 48.8420, 2.3210),
        ("Batignolles", 48.8870, 2.3150),
        ("Oberkampf", 48.8650, 2.3750),
        ("Latin Quarter", 48.8490, 2.3470),
        ("Bercy", 48.8350, 2.3850),
        ("Passy", 48.8580, 2.2800),
        ("Canal Saint-Martin", 48.8710, 2.3650),
    ),
    "Amsterdam": (
        ("Jordaan", 52.3740, 4.8810),
        ("De Pijp", 52.3550, 4.8950),
        ("Oud-West", 52.3640, 4.8700),
        ("Oost", 52.3600, 4.9300),
        ("Noord", 52.3900, 4.9200),
        ("Centrum", 52.3730, 4.8930),
        ("Westerpark", 52.3860, 4.8730),
        ("Zuid", 52.3440, 4.8700),
        ("Nieuw-West", 52.3650, 4.8100),
    ),
    "Vienna": (
        ("Innere Stadt", 48.2085, 16.3721),
        ("Leopoldstadt", 48.2200, 16.3950),
        ("Neubau", 48.2020, 16.3490),
        ("Wieden", 48.1920, 16.3700),
        ("Josefstadt", 48.2110, 16.3470),
        ("Ottakring", 48.2130, 16.3110),
        ("Favoriten", 48.1750, 16.3800),
        ("Döbling", 48.2500, 16.3500),
        ("Landstraße", 48.1980, 16.3950),
    ),
    "New York City": (
        ("Williamsburg", 40.7081, -73.9571),
        ("Park Slope", 40.6710, -73.9814),
        ("Astoria", 40.7644, -73.9235),
        ("Harlem", 40.8116, -73.9465),
        ("Chelsea", 40.7465, -74.0014),
        ("SoHo", 40.7233, -74.0030),
        ("Upper West Side", 40.7870, -73.9754),
        ("Bushwick", 40.6944, -73.9213),
        ("Greenpoint", 40.7304, -73.9515),
        ("East Village", 40.7265, -73.9815),
        ("Long Island City", 40.7447, -73.9485),
        ("Flushing", 40.7675, -73.8331),
        ("Crown Heights", 40.6694, -73.9422),
        ("Tribeca", 40.7163, -74.0086),
        ("Upper East Side", 40.7736, -73.9566),
    ),
}
