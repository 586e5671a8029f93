"""Tokopedia replica: GraphQL search and detail on ``tokopedia-gql``, listing pages on ``tokopedia``.

Paths (below the host prefix, as on the real hosts):

- ``POST /graphql/SearchProductV5Query`` (``tokopedia-gql``): JSON array body ``[{operationName, variables:
  {params}, query}]``; ``params`` is a URL-encoded string with ``q``, ``page``, ``rows`` (60), ``start``.
  Answers ``[{"data": {"searchProductV5": {header, data}}}]``. Keywords on the platform blocklist
  (``sandbox.state.BLOCKLISTS``): ``header.isQuerySafe = false``, a ``data.violation`` banner; no products.
- ``POST /graphql/PDPGetLayoutQuery`` (``tokopedia-gql``): variables ``shopDomain`` + ``productKey``. Answers
  ``[{"data": {"pdpGetLayout": …}}]`` shaped like the real ``pdp_get_layout.json``; ``basicInfo.status``
  ACTIVE / BANNED / DELETED (removed) / WAREHOUSE / HIDDEN (hidden); unknown or most removed listings give
  ``errors[].extensions.code == 2001`` with ``pdpGetLayout: null``.
- ``GET /{shopDomain}/{productKey}`` (``tokopedia``): server-rendered page with ``data-testid`` hooks
  (``lblPDPDetailProductName``, ``lblPDPDetailProductPrice``, ``lblPDPDescriptionProduk``,
  ``llbPDPFooterShopName``) and the layout embedded as ``<script id="pdp-layout" type="application/json">``.
  Removed or unknown → 404 "Produk tidak ditemukan".
- ``POST /graphql/ShopProducts`` (``tokopedia-gql``): variables ``sid`` (shop id), ``page``, ``perPage``
  (≤ 80). Answers ``[{"data": {"GetShopProduct": {status, links: {prev, next}, data: [{product_id, name,
  product_url, price.text_idr, primary_image.original, …}]}}}]``: the shop's live listings, newest first
  (what seller following reads).
- Block fault: Akamai "Access Denied" HTML (HTTP 200, as seen behind CDNs).

Which removal signal a removed listing shows is a stable hash of its key (:func:`removal_style`).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.catalog import EPOCH, CatalogListing, IdGen, slugify
from sandbox.images import image_route
from sandbox.platforms import (
    escape,
    guarded,
    html_response,
    image_url,
    json_response,
    listing_slug,
    pick,
    root_url,
    rupiah,
    script_json,
    sold_count,
    sold_floor_label,
    stock_count,
    virtual_day,
)
from sandbox.spec import Policy, ReplicaSpec, Shop
from sandbox.state import Fault, SandboxState

PLATFORM = "tokopedia"
ROWS = 60
MAX_PAGE = 100

AKAMAI_PAGE = """<HTML><HEAD>
<TITLE>Access Denied</TITLE>
</HEAD><BODY>
<H1>Access Denied</H1>

You don't have permission to access "http&#58;&#47;&#47;www&#46;tokopedia&#46;com&#47;" on this server.<P>
Please verify you are human.<P>
Reference&#32;&#35;18&#46;{ref}
</BODY>
</HTML>
"""


def block_page(request: Request, fault: Fault) -> Response:
    ref = f"{abs(hash(request.url.path)) % 10**8:08d}"
    return html_response(AKAMAI_PAGE.replace("{ref}", ref), 200)


def removal_style(listing: CatalogListing, status: str) -> str:
    """How this listing shows its state: ACTIVE, BANNED, DELETED, WAREHOUSE, HIDDEN or ERROR_2001."""
    if status == "LIVE":
        return "ACTIVE"
    if status == "HIDDEN":
        return ("WAREHOUSE", "HIDDEN")[pick(listing.key, "tkp-hidden", 2)]
    return ("ERROR_2001", "ERROR_2001", "BANNED", "DELETED")[pick(listing.key, "tkp-removed", 4)]


def listing_url(request: Request, listing: CatalogListing) -> str:
    _, path = page_path(listing)
    return f"{root_url(request)}/tokopedia{path}"


def _category(listing: CatalogListing) -> dict[str, Any]:
    parts = [p.strip() for p in listing.category.split("/") if p.strip()]
    cat_id = 1000 + pick(listing.category, "cat", 8000)
    return {"id": cat_id, "name": parts[-1] if parts else "", "breadcrumb": " / ".join(parts)}


def _product(request: Request, listing: CatalogListing, rank: int) -> dict[str, Any]:
    root = root_url(request)
    cat = _category(listing)
    sold = sold_count(listing, virtual_day(request))
    ad_id = str(10**7 + pick(listing.key, "ad", 9 * 10**7)) if listing.sponsored else ""
    return {
        "oldID": int(listing.listing_id),
        "id": listing.listing_id,
        "ttsProductID": listing.extra.get("tts_product_id", ""),
        "name": listing.title,
        "url": listing_url(request, listing),
        "applink": f"tokopedia://product/{listing.listing_id}",
        "mediaURL": {
            "image": image_url(request, "tokopedia", listing),
            "image300": image_url(request, "tokopedia", listing),
            "videoCustom": "",
        },
        "shop": {
            "oldID": int(listing.seller_id) if listing.seller_id.isdigit() else 0,
            "id": listing.seller_id,
            "ttsSellerID": "",
            "name": listing.seller_name,
            "url": f"{root}/tokopedia/{listing.shop_domain}",
            "city": listing.seller_city,
            "tier": pick(listing.seller_id, "tier", 3),
        },
        "badge": {"title": "", "url": ""},
        "price": {
            "text": rupiah(listing.price),
            "number": listing.price,
            "range": "",
            "original": "",
            "discountPercentage": 0,
        },
        "freeShipping": {"url": ""},
        "labelGroups": [
            {
                "id": "",
                "position": "ri_product_credibility",
                "title": sold_floor_label(sold),
                "type": "textDarkGrey",
                "url": "",
                "styles": [],
            }
        ],
        "category": {**cat, "gaKey": f"/{cat['breadcrumb'].lower().replace(' / ', '/')}"},
        "rating": f"4.{pick(listing.key, 'rating', 10)}",
        "wishlist": False,
        "ads": {
            "id": ad_id,
            "productClickURL": f"{root}/tokopedia/promo/v1/clicks/{ad_id}" if ad_id else "",
            "productViewURL": "",
            "productWishlistURL": "",
            "tag": 1 if ad_id else 0,
        },
        "meta": {"parentID": "0", "warehouseID": "", "isImageBlurred": False, "isPortrait": False},
    }


def search_body(state: SandboxState, request: Request, query: str, page: int, rows: int) -> dict[str, Any]:
    """The ``data`` object of a SearchProductV5 answer."""
    blocked = state.blocked_query(PLATFORM, query)
    products: list[dict[str, Any]] = []
    total = 0
    if not blocked and 1 <= page <= MAX_PAGE:
        found, total = state.search(PLATFORM, query, (page - 1) * rows, rows)
        products = [_product(request, x, i) for i, x in enumerate(found, start=1)]
    violation = {
        "headerText": "",
        "descriptionText": "",
        "imageURL": "",
        "ctaURL": "",
        "ctaApplink": "",
        "buttonText": "",
        "buttonType": "",
    }
    if blocked:
        violation.update(
            headerText="Hasil pencarian tidak dapat ditampilkan",
            descriptionText=(
                "Kata kunci yang kamu cari melanggar Syarat & Ketentuan Tokopedia. "
                "Silakan gunakan kata kunci lain."
            ),
            imageURL=f"{root_url(request)}/tokopedia/img/violation.png",
        )
    return {
        "searchProductV5": {
            "header": {
                "totalData": total,
                "responseCode": 0 if products or blocked else 2,
                "keywordProcess": "0",
                "keywordIntention": 0,
                "componentID": "",
                "isQuerySafe": not blocked,
                "additionalParams": "",
                "backendFilters": "",
                "meta": {"dynamicFields": []},
            },
            "data": {
                "totalDataText": f"{total:,}".replace(",", "."),
                "banner": {"position": 0, "text": "", "applink": "", "url": "", "imageURL": ""},
                "redirection": {"url": ""},
                "related": {"relatedKeyword": "", "position": 0, "trackingOption": 0, "otherRelated": []},
                "suggestion": {
                    "currentKeyword": query,
                    "suggestion": "",
                    "query": "",
                    "text": "",
                    "componentID": "",
                    "trackingOption": 0,
                },
                "violation": violation,
                "products": products,
            },
        }
    }


SHOP_PER_PAGE = 80


def shop_body(
    state: SandboxState, request: Request, shop_id: str, page: int, per_page: int
) -> dict[str, Any]:
    """The ``data`` object of a ShopProducts answer: one page of a shop's products, newest first."""
    found, total = state.shop(PLATFORM, shop_id, (page - 1) * per_page, per_page)
    more = page * per_page < total
    return {
        "GetShopProduct": {
            "status": "OK",
            "errors": "",
            "links": {
                "prev": f"page={page - 1}" if page > 1 else "",
                "next": f"page={page + 1}" if more else "",
            },
            "totalData": total,
            "data": [
                {
                    "product_id": listing.listing_id,
                    "name": listing.title,
                    "product_url": listing_url(request, listing),
                    "stock": 1 + pick(listing.key, "stock", 50),
                    "price": {"text_idr": rupiah(listing.price)},
                    "primary_image": {"original": image_url(request, "tokopedia", listing)},
                    "flags": {"isSold": False, "isPreorder": False},
                    "stats": {"reviewCount": pick(listing.key, "reviews", 40), "rating": 4},
                    "label_groups": [],
                }
                for listing in found
            ],
        }
    }


def _layout(request: Request, listing: CatalogListing, status: str) -> dict[str, Any]:
    """A ``pdpGetLayout`` object with the keys of the real capture (tests/…/pdp_get_layout.json)."""
    root = root_url(request)
    url = listing_url(request, listing)
    slug = url.rsplit("/", 1)[-1]
    cat = _category(listing)
    parts = [p.strip() for p in listing.category.split("/") if p.strip()]
    day = virtual_day(request)
    sold = sold_count(listing, day)
    img = image_url(request, "tokopedia", listing)
    created = "2026-01-01T10:00:00+07:00" if listing.created_day >= 0 else _date(listing.created_day)
    media = {
        "type": "image",
        "urlOriginal": img,
        "urlThumbnail": img,
        "urlMaxRes": img,
        "videoUrl": "",
        "prefix": f"{root}/tokopedia/img/",
        "suffix": f"{listing.image_seed}.jpg",
        "description": "",
        "variantOptionID": "0",
        "__typename": "pdpContentSnapshotMedia",
    }

    def detail(title: str, subtitle: str, show: bool = True, applink: str = "") -> dict[str, Any]:
        return {
            "title": title,
            "subtitle": subtitle,
            "applink": applink,
            "showAtFront": show,
            "isAnnotation": False,
            "__typename": "pdpContentProductDetail",
        }

    def info(title: str) -> dict[str, Any]:
        return {
            "icon": "",
            "title": title,
            "isApplink": True,
            "applink": "",
            "content": [],
            "__typename": "pdpDataInfo",
        }

    def comp(name: str, type_: str, position: str, data: list[Any]) -> dict[str, Any]:
        return {"name": name, "type": type_, "position": position, "data": data, "__typename": "pdpComponent"}

    content = {
        "name": listing.title,
        "price": {"value": listing.price, "currency": "IDR", "__typename": "pdpContentSnapshotPrice"},
        "campaign": {
            "campaignID": "0",
            "campaignType": "0",
            "campaignTypeName": "",
            "campaignIdentifier": 0,
            "background": "",
            "percentageAmount": 0,
            "originalPrice": 0,
            "discountedPrice": 0,
            "originalStock": 0,
            "stock": 0,
            "stockSoldPercentage": 0,
            "threshold": 0,
            "startDate": "",
            "endDate": "",
            "endDateUnix": "0",
            "appLinks": "",
            "isAppsOnly": False,
            "isActive": False,
            "hideGimmick": False,
            "__typename": "pdpContentSnapshotCampaign",
        },
        "thematicCampaign": {
            "additionalInfo": "",
            "background": "",
            "campaignName": "",
            "icon": "",
            "__typename": "pdpContentSnapshotThematicCampaign",
        },
        "stock": {
            "useStock": True,
            "value": str(stock_count(listing, day)),
            "stockWording": "",
            "__typename": "pdpContentSnapshotStock",
        },
        "variant": {"isVariant": False, "parentID": "0", "__typename": "pdpContentSnapshotVariant"},
        "wholesale": [],
        "isCashback": {"percentage": 0, "__typename": "pdpContentSnapshotIsCashback"},
        "isTradeIn": False,
        "isOS": False,
        "isPowerMerchant": pick(listing.seller_id, "pm", 2) == 1,
        "isWishlist": False,
        "isCOD": True,
        "preorder": {
            "duration": 0,
            "timeUnit": "",
            "isActive": False,
            "preorderInDays": 0,
            "__typename": "pdpContentSnapshotPreorder",
        },
        "__typename": "pdpDataProductContent",
    }
    details = [
        detail("Kondisi", "Baru" if listing.condition == "NEW" else "Bekas"),
        detail("Berat Satuan", f"{300 + pick(listing.key, 'w', 900)} g", False),
        detail("Min. Pemesanan", "1 Buah"),
        detail("Kategori", cat["name"], False, f"{root}/tokopedia/p/{cat['id']}"),
        detail("Etalase", "Semua Etalase", True, f"{root}/tokopedia/{listing.shop_domain}/etalase"),
        detail("Deskripsi", listing.description),
    ]
    components = [
        comp(
            "product_media",
            "product_media",
            "[0,0,1,4]",
            [{"media": [media], "videos": [], "__typename": "pdpDataProductMedia"}],
        ),
        comp("ticker_info", "ticker_info", "[0,1,1,4]", []),
        comp("variant_options", "variant", "[0,2,1,4]", []),
        comp("product_content", "product_content", "[1,0,1,4]", [content]),
        comp("new_variant_options", "variant", "[1,1,1,4]", []),
        comp(
            "product_detail",
            "product_detail",
            "[1,2,1,4]",
            [{"content": details, "__typename": "pdpDataProductDetail"}],
        ),
        comp("obat_keras", "custom_info", "[1,3,1,4]", []),
        comp("shop_credibility", "shop_credibility", "[2,0,1,4]", []),
        comp("shipment", "shipment", "[2,1,1,4]", []),
        comp("shipping", "info", "[2,2,1,4]", [info("Kurir")]),
        comp("shop_voucher", "shop_voucher", "[2,3,1,4]", []),
        comp("offerings", "offerings", "[2,4,1,4]", []),
        comp("installment_paylater", "info", "[2,5,1,4]", [info("Paylater & Cicilan")]),
        comp("QRCode", "Web2App", "[2,6,1,4]", []),
        comp("wholesale", "info", "[2,7,1,4]", [info("Harga Grosir")]),
        comp("protection", "info", "[2,8,1,4]", [info("Proteksi Gadget")]),
        comp("report", "report", "[3,0,1,4]", []),
        comp("review", "review", "[3,1,1,4]", []),
        comp("tdn_topads", "banner_ads", "[3,2,1,4]", []),
        comp("discussion_faq", "discussion_faq", "[3,3,1,4]", []),
        comp("pdp_1", "product_list", "[4,0,1,4]", []),
        comp("pdp_2", "product_list", "[4,1,1,4]", []),
        comp("pdp_3", "product_list", "[4,2,1,4]", []),
        comp("pdp_4", "product_list", "[4,3,1,4]", []),
    ]
    return {
        "requestID": f"sbx{pick(listing.key, 'req', 10**12):012d}",
        "name": "Default Layout Desktop",
        "pdpSession": json.dumps(
            {
                "sid": listing.seller_id,
                "sd": listing.shop_domain,
                "cat": {"id": cat["id"]},
                "pid": listing.listing_id,
            },
            separators=(",", ":"),
        ),
        "basicInfo": {
            "alias": slug,
            "createdAt": created,
            "isQA": False,
            "id": listing.listing_id,
            "shopID": listing.seller_id,
            "shopName": listing.seller_name,
            "minOrder": 1,
            "maxOrder": 9999,
            "weight": 300 + pick(listing.key, "w", 900),
            "weightUnit": "GRAM",
            "condition": listing.condition,
            "status": status,
            "url": url,
            "needPrescription": False,
            "catalogID": "0",
            "isLeasing": False,
            "isBlacklisted": False,
            "isTokoNow": False,
            "menu": {
                "id": "0",
                "name": "Semua Etalase",
                "url": f"{root}/tokopedia/{listing.shop_domain}/etalase",
                "__typename": "pdpMenu",
            },
            "category": {
                "id": str(cat["id"]),
                "name": cat["name"],
                "title": "",
                "breadcrumbURL": f"{root}/tokopedia/p/{cat['id']}",
                "isAdult": False,
                "isKyc": False,
                "minAge": 0,
                "detail": [
                    {
                        "id": str(1000 + pick(p, "cat", 8000)),
                        "name": p,
                        "breadcrumbURL": f"{root}/tokopedia/p/{1000 + pick(p, 'cat', 8000)}",
                        "isAdult": False,
                        "__typename": "pdpCategoryDetail",
                    }
                    for p in parts
                ],
                "__typename": "pdpCategory",
            },
            "txStats": {
                "transactionSuccess": str(sold),
                "transactionReject": "0",
                "countSold": str(sold),
                "paymentVerified": str(sold),
                "itemSoldFmt": f"{sold // 10 * 10}+" if sold >= 10 else str(sold),
                "__typename": "pdpTxStats",
            },
            "stats": {
                "countView": str(sold * 40 + 17),
                "countReview": str(sold // 3),
                "countTalk": str(sold // 20),
                "rating": 4 + pick(listing.key, "r", 2),
                "__typename": "pdpStats",
            },
            "__typename": "pdpBasicInfo",
        },
        "components": components,
        "__typename": "pdpLayout",
    }


def _date(day: int) -> str:
    return (EPOCH + timedelta(days=day, hours=3)).strftime("%Y-%m-%dT%H:%M:%S+07:00")


def find_by_path(state: SandboxState, shop_domain: str, product_key: str) -> CatalogListing | None:
    key = state.resolve(f"/tokopedia/{shop_domain}/{product_key}")
    return state.get_by_key(key) if key else None


def pdp_answer(
    state: SandboxState, request: Request, shop_domain: str, product_key: str
) -> list[dict[str, Any]]:
    listing = find_by_path(state, shop_domain, product_key)
    style = "ERROR_2001"
    if listing is not None:
        style = removal_style(listing, state.status(PLATFORM, listing.listing_id))
    if listing is None or style == "ERROR_2001":
        return [
            {
                "errors": [
                    {
                        "message": "Produk tidak ditemukan",
                        "path": ["pdpGetLayout"],
                        "extensions": {"code": 2001, "developerMessage": "product not found"},
                    }
                ],
                "data": {"pdpGetLayout": None},
            }
        ]
    return [{"data": {"pdpGetLayout": _layout(request, listing, style)}}]


async def _gql_body(request: Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    return data if isinstance(data, dict) else None


def _gql_error(message: str) -> Response:
    return json_response([{"errors": [{"message": message, "extensions": {"code": 400}}], "data": None}], 400)


def gql_routes(state: SandboxState) -> list[BaseRoute]:
    guard = guarded(state, PLATFORM, block_page)

    @guard
    async def search(request: Request) -> Response:
        op = await _gql_body(request)
        params = (op or {}).get("variables", {}).get("params") if isinstance(op, dict) else None
        if not isinstance(params, str):
            return _gql_error("variables.params (string) is required")
        values = dict(parse_qsl(params, keep_blank_values=True))
        query = values.get("q", "")
        try:
            rows = min(max(int(values.get("rows", ROWS)), 1), ROWS)
            page = int(values.get("page", 1))
            if "start" in values and "page" not in values:
                page = int(values["start"]) // rows + 1
        except ValueError:
            return _gql_error("params: page/rows/start must be integers")
        return json_response([{"data": search_body(state, request, query, page, rows)}])

    @guard
    async def pdp(request: Request) -> Response:
        op = await _gql_body(request)
        variables = (op or {}).get("variables") if isinstance(op, dict) else None
        if (
            not isinstance(variables, dict)
            or not variables.get("shopDomain")
            or not variables.get("productKey")
        ):
            return _gql_error("variables.shopDomain and variables.productKey are required")
        answer = pdp_answer(state, request, str(variables["shopDomain"]), str(variables["productKey"]))
        return json_response(answer)

    @guard
    async def shop_products(request: Request) -> Response:
        op = await _gql_body(request)
        variables = (op or {}).get("variables") if isinstance(op, dict) else None
        if not isinstance(variables, dict) or not str(variables.get("sid") or ""):
            return _gql_error("variables.sid is required")
        try:
            page = max(1, int(variables.get("page") or 1))
            per_page = min(max(int(variables.get("perPage") or SHOP_PER_PAGE), 1), SHOP_PER_PAGE)
        except (TypeError, ValueError):
            return _gql_error("variables.page/perPage must be integers")
        return json_response([{"data": shop_body(state, request, str(variables["sid"]), page, per_page)}])

    return [
        Route("/graphql/SearchProductV5Query", search, methods=["POST"]),
        Route("/graphql/PDPGetLayoutQuery", pdp, methods=["POST"]),
        Route("/graphql/ShopProducts", shop_products, methods=["POST"]),
        Route("/graphql/{operation}", pdp_or_search(search, pdp, shop_products), methods=["POST"]),
    ]


def pdp_or_search(search: Any, pdp: Any, shop_products: Any = None) -> Any:
    """``POST /graphql`` with the operation in the body (some clients omit it from the path)."""

    async def dispatch(request: Request) -> Response:
        op = str(request.path_params.get("operation", ""))
        if op.startswith("SearchProduct"):
            return await search(request)
        if op.startswith("PDPGetLayout"):
            return await pdp(request)
        if op.startswith("ShopProducts") and shop_products is not None:
            return await shop_products(request)
        return _gql_error(f"unknown operation {op}")

    return dispatch


NOT_FOUND_PAGE = """<!DOCTYPE html><html lang="id"><head><meta charset="utf-8"><title>Produk tidak ditemukan |
Tokopedia</title></head><body><div data-testid="pdpNotFound"><h1>Oops, produk nggak ditemukan</h1>
<p>Produk yang kamu cari tidak ditemukan atau sudah dihapus.</p></div></body></html>"""


def render_page(request: Request, listing: CatalogListing, layout: dict[str, Any]) -> str:
    title = escape(listing.title)
    desc = escape(listing.description).replace("\n", "<br>")
    return f"""<!DOCTYPE html>
<html lang="id"><head><meta charset="utf-8">
<title>Jual {title} - {escape(listing.seller_city)} - {escape(listing.seller_name)} | Tokopedia</title>
<meta property="og:title" content="{title}">
<meta property="og:image" content="{escape(image_url(request, "tokopedia", listing))}">
<meta property="og:url" content="{escape(listing_url(request, listing))}">
<link rel="canonical" href="{escape(listing_url(request, listing))}">
</head><body>
<div id="main-pdp-container">
<img data-testid="PDPMainImage" src="{escape(image_url(request, "tokopedia", listing))}" alt="{title}">
<h1 class="css-1os9jjn" data-testid="lblPDPDetailProductName">{title}</h1>
<div class="price" data-testid="lblPDPDetailProductPrice">{rupiah(listing.price)}</div>
<p data-testid="lblPDPDetailProductSoldCounter">Terjual {sold_count(listing, virtual_day(request))}</p>
<ul data-testid="lblPDPInfoProduk"><li>Kondisi: {"Baru" if listing.condition == "NEW" else "Bekas"}</li></ul>
<div data-testid="lblPDPDescriptionProduk">{desc}</div>
<a data-testid="llbPDPFooterShopName" href="{root_url(request)}/tokopedia/{listing.shop_domain}">
<h2>{escape(listing.seller_name)}</h2></a>
<span data-testid="lblPDPShopLocation">{escape(listing.seller_city)}</span>
</div>
<script id="pdp-layout" type="application/json">{script_json({"pdpGetLayout": layout})}</script>
</body></html>"""


def routes(state: SandboxState) -> list[BaseRoute]:
    guard = guarded(state, PLATFORM, block_page)

    @guard
    async def page(request: Request) -> Response:
        shop, key = str(request.path_params["shop"]), str(request.path_params["product"])
        listing = find_by_path(state, shop, key)
        if listing is None:
            return html_response(NOT_FOUND_PAGE, 404)
        style = removal_style(listing, state.status(PLATFORM, listing.listing_id))
        if style in ("ERROR_2001", "BANNED", "DELETED"):
            return html_response(NOT_FOUND_PAGE, 404)
        return html_response(render_page(request, listing, _layout(request, listing, style)))

    return [image_route(state), Route("/{shop}/{product}", page, methods=["GET"])]


MOUNTS = {"tokopedia": routes, "tokopedia-gql": gql_routes}


# -- the replica's spec (sandbox.spec) ------------------------------------------------------------------


def page_path(listing: CatalogListing) -> tuple[str, str]:
    return "tokopedia", f"/{listing.shop_domain}/{listing_slug(listing)}"


def new_ids(gen: IdGen, shop: Shop, title: str) -> tuple[str, dict[str, str]]:
    slug = slugify(title)
    lid = gen.unique(lambda: gen.digits(10))
    # the page URL is /{shopDomain}/{slug}: a seller's second listing with the same title gets a suffix
    n = 1
    while f"tkp:{shop[2]}/{slug}" in gen.used_ids:
        n += 1
        slug = f"{slugify(title)}-{n}"
    gen.used_ids.add(f"tkp:{shop[2]}/{slug}")
    return lid, {"slug": slug}


def late_ids(gen: IdGen) -> dict[str, str]:
    """A fifth of the products are TikTok Shop products too (``ttsProductID`` in the search results)."""
    if gen.rng.random() < 0.2:
        return {"tts_product_id": gen.unique(lambda: "17" + gen.digits(17))}
    return {}


SPEC = ReplicaSpec(
    platform=PLATFORM,
    share=0.24,
    mounts=MOUNTS,
    page_path=page_path,
    new_ids=new_ids,
    late_ids=late_ids,
    takedown=Policy(0.90, 0, 1, 0.10, 0.35, (2, 5)),
    blocklist=("baju bekas impor", "pakaian bekas impor", "baju bekas import", "balpres", "bal press"),
    sponsored_share=0.05,
    relist_destination=True,
)
