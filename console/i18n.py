"""Console wording in Bahasa Indonesia (default) and English, and WIB time formatting.

Templates call ``t("key")`` for words and ``v("kind", value)`` for stored values that people read (run
statuses, verdicts, reject reasons, channels, term categories …: :data:`VALUES`). The language comes from
the ``lang`` cookie (``/lang/en``, ``/lang/id`` set it). A key missing from a language falls back to
Indonesian, then to the key itself; an unknown value is shown as stored. To add a language, add a column to
every entry and its code to :data:`LANGUAGES`. Times: every record is UTC; :func:`wib` shows them in the
settings' ``timezone`` (``Asia/Jakarta`` by default) with the zone's abbreviation.

Service errors (``crawler.errors.TertibError``) are English sentences written for the command line; pages
show them under a translated heading (:func:`error_heading`) and translate the common ones
(:data:`ERRORS`, matched by pattern).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

LANGUAGES: tuple[str, ...] = ("id", "en")
DEFAULT_LANGUAGE = "id"

# key: (Bahasa Indonesia, English)
MESSAGES: dict[str, tuple[str, str]] = {
    "app_title": ("Konsol tertib", "tertib console"),
    "dashboard": ("Dasbor", "Dashboard"),
    "sweeps": ("Penyisiran & jadwal", "Sweeps & schedules"),
    "terms": ("Istilah", "Terms"),
    "review": ("Antrean tinjauan", "Review queue"),
    "batches": ("Batch takedown", "Takedown batches"),
    "batch": ("Batch", "Batch"),
    "audit": ("Audit", "Audit"),
    "evidence": ("Bukti", "Evidence"),
    "sellers": ("Penjual", "Sellers"),
    "menu": ("Menu", "Menu"),
    "login": ("Masuk", "Log in"),
    "logout": ("Keluar", "Log out"),
    "username": ("Nama pengguna", "User name"),
    "password": ("Kata sandi", "Password"),
    "login_failed": ("Nama pengguna atau kata sandi salah.", "Wrong user name or password."),
    "login_wait": (
        "Terlalu banyak percobaan masuk. Coba lagi dalam {wait}.",
        "Too many sign-in attempts. Try again in {wait}.",
    ),
    "read_only": ("hanya baca", "read-only"),
    "approve": ("Setujui", "Approve"),
    "reject": ("Tolak", "Reject"),
    "retire": ("Pensiunkan", "Retire"),
    "skip": ("Lewati", "Skip"),
    "previous": ("Sebelumnya", "Previous"),
    "next": ("Berikutnya", "Next"),
    "newer": ("Lebih baru", "Newer"),
    "older": ("Lebih lama", "Older"),
    "first_page": ("Halaman pertama", "First page"),
    "page_n": ("Halaman {n} dari {pages}", "Page {n} of {pages}"),
    "rows_n": ("{first}–{last} dari {total}", "{first}–{last} of {total}"),
    "reason": ("Alasan", "Reason"),
    "note": ("Catatan", "Note"),
    "cancel": ("Batal", "Cancel"),
    "order": ("Urutan", "Order"),
    "order_score": ("Skor tertinggi dulu", "Highest score first"),
    "order_uncertain": ("Paling tidak pasti dulu", "Least certain first"),
    "order_uncertain_help": (
        "Yang paling tidak diyakini model dulu (peluang terdekat ke 0,5), yang lemah juga: keputusan di sini"
        " paling banyak mengajari model berikutnya.",
        "What the model is least sure about first (probability closest to 0.5), weak listings included: a"
        " decision here teaches the next model the most.",
    ),
    "model": ("Model deteksi", "Detection model"),
    "model_none": (
        "Tidak ada model: skor hanya dari aturan leksikon (setelan model = rules).",
        "No model: scores come from the lexicon rules alone (setting model = rules).",
    ),
    "model_error": ("Model aktif tidak dapat dibaca", "The active model cannot be read"),
    "model_version": ("Versi", "Version"),
    "model_created": ("Dilatih", "Trained"),
    "model_algorithm": ("Algoritme", "Algorithm"),
    "model_origin": ("Asal", "Origin"),
    "model_packaged": ("bawaan tertib", "packaged with tertib"),
    "model_trained_here": ("dilatih di instalasi ini", "trained on this installation"),
    "model_features": ("Fitur", "Features"),
    "model_code": ("Versi kode", "Code version"),
    "model_data": ("Data", "Data"),
    "model_rows": ("Baris", "Rows"),
    "model_illegal": ("Ilegal", "Illegal"),
    "model_legit": ("Sah", "Legitimate"),
    "model_sources": ("Sumber", "Sources"),
    "model_decisions": ("Keputusan peninjau dipakai", "Reviewer decisions used"),
    "model_train": ("Latih", "Training"),
    "model_heldout": ("Uji tersisih (tidak pernah dilatih)", "Held out (never trained on)"),
    "model_cv": ("Validasi silang (baris latih)", "Cross-validation (training rows)"),
    "model_level": ("Tingkat", "Level"),
    "model_threshold": ("Ambang", "Threshold"),
    "recall": ("Recall", "Recall"),
    "model_review_uncertain": ("Tinjau yang paling tidak pasti", "Review the least certain"),
    "queue_empty": (
        "Antrean kosong: semua kandidat sudah ditinjau.",
        "Queue empty: every candidate is decided.",
    ),
    "keys_help": (
        "Tombol: j/k pindah, a setujui, r tolak (lalu 1–6 pilih alasan), Esc batal.",
        "Keys: j/k move, a approve, r reject (then 1–6 picks the reason), Esc cancels.",
    ),
    "keys_help_read": ("Tombol: j/k pindah.", "Keys: j/k move."),
    "candidate_of": ("Kandidat {pos} dari {total}", "Candidate {pos} of {total}"),
    "score": ("Skor", "Score"),
    "verdict": ("Putusan skor", "Score verdict"),
    "price": ("Harga", "Price"),
    "seller": ("Penjual", "Seller"),
    "city": ("Kota", "City"),
    "handles": ("Kontak", "Contact handles"),
    "platform": ("Platform", "Platform"),
    "all_platforms": ("Semua platform", "All platforms"),
    "title": ("Judul", "Title"),
    "listing": ("Listing", "Listing"),
    "signals": ("Sinyal yang cocok", "Matched signals"),
    "signal_term": ("Istilah", "Term"),
    "signal_role": ("Peran", "Role"),
    "signal_weight": ("Bobot", "Weight"),
    "signal_times": ("Kali", "Times"),
    "signal_matched": ("Teks yang cocok", "Matched text"),
    "screenshot": ("Tangkapan layar", "Screenshot"),
    "no_screenshot": ("Belum ada tangkapan layar.", "No screenshot captured."),
    "seller_history": ("Riwayat penjual", "Seller history"),
    "decision": ("Keputusan", "Decision"),
    "last_status": ("Status terakhir", "Last status"),
    "relisting": ("Unggah ulang", "Relisting"),
    "relist_of": ("Unggahan ulang dari", "Relisted from"),
    "relisted_as": ("Diunggah ulang sebagai", "Relisted as"),
    "relist_why": ("Alasan penandaan", "Why it was flagged"),
    "bulk": ("Aksi massal", "Bulk actions"),
    "bulk_confirm": (
        "Yakin? Ini berlaku untuk semua yang dicentang.",
        "Sure? This applies to every ticked row.",
    ),
    "bulk_none": ("Centang setidaknya satu baris.", "Tick at least one row."),
    "bulk_unconfirmed": ("Aksi massal belum dikonfirmasi.", "The bulk action was not confirmed."),
    "select_all": ("Pilih semua", "Select all"),
    "selected": ("Terapkan ke yang dicentang", "Apply to ticked rows"),
    "candidates_waiting": ("Kandidat menunggu", "Candidates waiting"),
    "batches_awaiting": ("Batch menunggu cek ulang", "Batches awaiting rechecks"),
    "last_runs": ("Penyisiran terakhir", "Last sweep runs"),
    "sweep_runs": ("Penyisiran", "Sweep runs"),
    "health": ("Kesehatan per platform", "Health per platform"),
    "needs_attention": ("Perlu perhatian", "Needs attention"),
    "all_clear": ("Semua platform normal.", "Every platform looked normal."),
    "requests": ("Permintaan", "Requests"),
    "listings": ("Listing", "Listings"),
    "candidates": ("Kandidat", "Candidates"),
    "captures": ("Tangkapan", "Captures"),
    "blocked": ("Terblokir", "Blocked"),
    "errors": ("Galat", "Errors"),
    "duration": ("Durasi", "Duration"),
    "removal_chart": ("Penghapusan dari waktu ke waktu", "Removals over time"),
    "no_data": ("Belum ada data.", "No data yet."),
    "started": ("Mulai", "Started"),
    "ended": ("Selesai", "Ended"),
    "status": ("Status", "Status"),
    "name": ("Nama", "Name"),
    "schedule": ("Jadwal", "Schedule"),
    "runs_what": ("Menjalankan", "Runs"),
    "next_run": ("Berikutnya", "Next run"),
    "paused": ("Dijeda", "Paused"),
    "active": ("Aktif", "Active"),
    "pause": ("Jeda", "Pause"),
    "resume": ("Lanjutkan", "Resume"),
    "run_now": ("Jalankan sekarang", "Run now"),
    "history": ("Riwayat tugas", "Job history"),
    "job": ("Tugas", "Job"),
    "sweep_run": ("Penyisiran #", "Sweep run"),
    "outcome": ("Hasil", "Outcome"),
    "kind": ("Jenis", "Kind"),
    "trigger": ("Pemicu", "Trigger"),
    "create": ("Buat", "Create"),
    "new_schedule": ("Jadwal baru", "New schedule"),
    "cron": ("Cron (WIB)", "Cron (WIB)"),
    "cron_help": (
        "menit jam tanggal bulan hari, mis. 0 2 * * * = tiap hari 02.00",
        "minute hour day month weekday, e.g. 0 2 * * * = daily 02:00",
    ),
    "max_pages": ("Halaman per kueri", "Pages per query"),
    "platforms": ("Platform", "Platforms"),
    "active_terms": ("Leksikon aktif", "Active lexicon"),
    "proposed_terms": ("Istilah usulan", "Proposed terms"),
    "discovery": ("Temuan", "Discovery"),
    "category": ("Kategori", "Category"),
    "signal": ("Sinyal", "Signal"),
    "strength": ("Kekuatan", "Strength"),
    "provenance": ("Asal", "Provenance"),
    "precision": ("Presisi", "Precision"),
    "approved": ("Disetujui", "Approved"),
    "rejected": ("Ditolak", "Rejected"),
    "examples": ("Contoh", "Examples"),
    "create_batch": ("Buat batch dari item yang disetujui", "Create a batch from approved items"),
    "ready_n": ("{n} item disetujui menunggu batch", "{n} approved items wait for a batch"),
    "batch_name": ("Nama batch", "Batch name"),
    "platforms_help": ("Kosongkan untuk semua platform.", "Leave empty for every platform."),
    "files": ("Berkas", "Files"),
    "mark_sent": ("Tandai terkirim", "Mark sent"),
    "sent": ("Terkirim", "Sent"),
    "not_sent": ("Belum dikirim", "Not sent"),
    "channel": ("Kanal", "Channel"),
    "sent_at": ("Waktu kirim (WIB)", "Sent at (WIB)"),
    "sent_at_help": ("Kosongkan untuk sekarang.", "Leave empty for now."),
    "items": ("Item", "Items"),
    "created": ("Dibuat", "Created"),
    "created_by": ("oleh", "by"),
    "manifest": ("Manifest", "Manifest"),
    "verdicts": ("Ringkasan", "Summary"),
    "audit_batches": ("Batch dan hasilnya", "Batches and their outcome"),
    "requested": ("Diminta", "Requested"),
    "removed": ("Dihapus", "Removed"),
    "hidden": ("Disembunyikan", "Hidden"),
    "live": ("Masih tayang", "Live"),
    "unobservable": ("Tak teramati", "Unobservable"),
    "unchecked": ("Belum dicek", "Unchecked"),
    "relisted": ("Diunggah ulang", "Relisted"),
    "median_hours": ("Median jam hingga dihapus", "Median hours to removal"),
    "p90_hours": ("P90 jam", "P90 hours"),
    "hours_to_removal": ("Jam hingga dihapus", "Hours to removal"),
    "report_download": ("Unduh laporan", "Download report"),
    "all_statuses": ("Semua status", "All statuses"),
    "filter": ("Saring", "Filter"),
    "show": ("Tampilkan", "Show"),
    "capture": ("Tangkapan", "Capture"),
    "captured_at": ("Waktu tangkap", "Captured at"),
    "purpose": ("Tujuan", "Purpose"),
    "observable": ("Teramati", "Observable"),
    "yes": ("ya", "yes"),
    "no": ("tidak", "no"),
    "warc_file": ("Berkas WARC", "WARC file"),
    "warc_records": ("Rekaman WARC", "WARC records"),
    "record_type": ("Jenis", "Type"),
    "digests": ("Digest", "Digest"),
    "details": ("Rincian", "Details"),
    "verify_now": ("Verifikasi sekarang", "Verify now"),
    "verify_ok": ("Verifikasi berhasil: tidak ada masalah.", "Verified: no problems."),
    "verify_problems": ("Masalah ditemukan", "Problems found"),
    "checked": ("Diperiksa", "Checked"),
    "download_wacz": ("Unduh WACZ", "Download WACZ"),
    "repeat_offenders": ("Pelanggar berulang", "Repeat offenders"),
    "linked_by": ("Terhubung lewat", "Linked by"),
    "confirmed": ("Terkonfirmasi", "Confirmed"),
    "confirmed_sellers": ("Penjual dengan item terkonfirmasi", "Sellers with confirmed items"),
    "forbidden": ("Peran Anda tidak boleh melakukan ini.", "Your role may not do this."),
    "csrf_failed": ("Token formulir tidak sah; muat ulang halaman.", "Invalid form token; reload the page."),
    "not_found": ("Tidak ditemukan.", "Not found."),
    "error": ("Permintaan tidak dapat diproses.", "The request could not be completed."),
    "error_detail": ("Keterangan", "Details"),
    "method_not_allowed": ("Cara akses ini tidak didukung.", "This method is not supported here."),
    "invalid_input": (
        "Alamat atau isian tidak sah; periksa lalu coba lagi.",
        "The address or a field is not valid; check it and try again.",
    ),
    "check_fields": ("Periksa", "Check"),
    "back": ("Kembali", "Back"),
    "fix_below": ("Periksa isian yang ditandai.", "Check the marked fields."),
    "required": ("Wajib diisi.", "Required."),
    "platform_invalid": ("Platform tidak dikenal.", "Unknown platform."),
    "channel_invalid": ("Pilih kanal pengiriman.", "Choose a channel."),
    "sent_at_invalid": ("Bukan tanggal dan jam yang sah.", "Not a valid date and time."),
    "name_invalid": (
        "Gunakan huruf kecil, angka, '.', '_' atau '-' (maks. 100).",
        "Use lower-case letters, digits, '.', '_' or '-' (at most 100).",
    ),
    "name_taken": ("Nama ini sudah dipakai.", "This name is taken."),
    "name_builtin": ("Nama tugas bawaan; pilih nama lain.", "A built-in job's name; choose another."),
    "cron_invalid": ("Bukan ekspresi cron 5 kolom yang sah.", "Not a valid 5-field cron expression."),
    "max_pages_invalid": ("Angka 1 sampai 50.", "A number from 1 to 50."),
    "saved": ("Tersimpan.", "Saved."),
    "language": ("English", "Bahasa Indonesia"),
    "custody_note": (
        "Setiap aksi dicatat atas nama Anda di log lacak-bukti.",
        "Every action is recorded under your name in the custody log.",
    ),
}

# stored values people read, by kind: value → (Bahasa Indonesia, English)
VALUES: dict[str, dict[str, tuple[str, str]]] = {
    "role": {
        "analyst": ("analis", "analyst"),
        "staff": ("staf", "staff"),
        "auditor": ("auditor", "auditor"),
        "admin": ("admin", "admin"),
    },
    "run_status": {
        "running": ("berjalan", "running"),
        "completed": ("selesai", "completed"),
        "partial": ("sebagian", "partial"),
        "failed": ("gagal", "failed"),
    },
    "job_status": {
        "running": ("berjalan", "running"),
        "ok": ("berhasil", "ok"),
        "failed": ("gagal", "failed"),
        "skipped": ("dilewati", "skipped"),
        "timeout": ("melewati batas waktu", "timed out"),
    },
    "run_kind": {"sweep": ("penyisiran", "sweep"), "recheck": ("cek ulang", "recheck")},
    "trigger": {
        "manual": ("manual", "manual"),
        "schedule": ("jadwal", "schedule"),
        "demo": ("demo", "demo"),
    },
    "verdict": {
        "strong": ("kuat", "strong"),
        "candidate": ("kandidat", "candidate"),
        "weak": ("lemah", "weak"),
        "clear": ("bersih", "clear"),
    },
    "item_status": {
        "REMOVED": ("dihapus", "removed"),
        "HIDDEN": ("disembunyikan", "hidden"),
        "LIVE": ("masih tayang", "live"),
        "UNOBSERVABLE": ("tak teramati", "unobservable"),
        "UNCHECKED": ("belum dicek", "unchecked"),
    },
    "decision": {"approve": ("disetujui", "approved"), "reject": ("ditolak", "rejected")},
    "reject_reason": {
        "legit_preloved": ("preloved pribadi yang sah", "legitimate personal preloved"),
        "legit_new": ("barang baru yang sah", "legitimate new goods"),
        "local_secondhand": ("barang bekas lokal", "local second-hand"),
        "not_clothing": ("bukan pakaian", "not clothing"),
        "insufficient_evidence": ("bukti kurang", "insufficient evidence"),
        "other": ("lainnya", "other"),
    },
    "channel": {
        "idea": ("idEA (asosiasi e-commerce)", "idEA (e-commerce association)"),
        "portal": ("portal platform", "platform portal"),
        "letter": ("surat resmi", "official letter"),
        "meta_reporting": ("pelaporan Meta", "Meta reporting"),
        "sandbox": ("sandbox (uji)", "sandbox (test)"),
    },
    "purpose": {"sweep": ("penyisiran", "sweep"), "recheck": ("cek ulang", "recheck")},
    "term_category": {
        "standard": ("umum", "standard"),
        "bulk": ("grosir/bal", "bulk/bale"),
        "event": ("acara", "event"),
        "regional": ("daerah", "regional"),
        "origin": ("asal negara", "origin"),
        "negative": ("penyangkal", "negative"),
    },
    "term_signal": {
        "IMPORT": ("impor", "import"),
        "IMPORT-leaning": ("cenderung impor", "import-leaning"),
        "LOCAL": ("lokal", "local"),
        "NEUTRAL": ("netral", "neutral"),
        "NEW": ("barang baru", "new goods"),
    },
    "term_strength": {
        "S": ("kuat", "strong"),
        "M": ("sedang", "medium"),
        "W": ("lemah", "weak"),
        "NEG": ("negatif", "negative"),
    },
    "provenance": {
        "seed": ("leksikon awal", "seed lexicon"),
        "discovered": ("ditemukan otomatis", "discovered"),
        "analyst": ("analis", "analyst"),
    },
    "schedule_kind": {
        "sweep": ("penyisiran", "sweep"),
        "command": ("perintah tertib", "tertib command"),
        "builtin:rechecks": ("cek ulang yang jatuh tempo", "rechecks that are due"),
        "builtin:discovery": ("temuan istilah setelah tiap penyisiran", "term discovery after each sweep"),
        "builtin:evidence-verify": ("verifikasi semua bukti", "verify all evidence"),
    },
    "relist_signal": {
        "seller": ("penjual sama", "same seller"),
        "handle": ("kontak sama", "shared handle"),
        "title": ("judul mirip", "similar title"),
        "image": ("gambar mirip", "similar image"),
    },
    "relist_field": {
        "parent_key": ("Unggahan asal", "Original listing"),
        "rule": ("Aturan", "Rule"),
        "signals": ("Sinyal", "Signals"),
        "title_score": ("Kemiripan judul", "Title similarity"),
        "image_distance": ("Jarak gambar (pHash)", "Image distance (pHash)"),
        "shared_handles": ("Kontak bersama", "Shared handles"),
        "same_seller": ("Penjual sama", "Same seller"),
        "thresholds": ("Ambang", "Thresholds"),
        "sweep_run_id": ("Penyisiran #", "Sweep run"),
        "detected_at": ("Terdeteksi", "Detected"),
        "queue": ("Antrean", "Queue"),
        "why": ("Alasan", "Why"),
    },
    "signal_role": {
        "explicit": ("eksplisit impor", "explicit import"),
        "bulk": ("grosir/bal", "bulk/bale"),
        "bulk-medium": ("grosir (sedang)", "bulk (medium)"),
        "used": ("bekas", "used"),
        "origin": ("asal negara", "origin"),
        "regional": ("daerah", "regional"),
        "negative": ("penyangkal", "negative"),
        "other": ("lainnya", "other"),
        "combo": ("kombinasi", "combination"),
    },
}

# service errors (English, for the command line) that pages show translated; pattern → (id, en)
ERRORS: tuple[tuple[re.Pattern[str], tuple[str, str]], ...] = (
    (
        re.compile(r"no approved items are waiting"),
        ("Tidak ada item disetujui yang menunggu batch.", "No approved items are waiting for a batch."),
    ),
    (
        re.compile(r"was already marked sent to (\S+)"),
        ("Batch ini sudah ditandai terkirim ke {0}.", "This batch was already marked sent to {0}."),
    ),
    (
        re.compile(r"send time is before the batch was created"),
        ("Waktu kirim lebih awal dari pembuatan batch.", "The send time is before the batch was created."),
    ),
    (re.compile(r"no such batch"), ("Batch tidak ditemukan.", "No such batch.")),
    (re.compile(r"no such listing"), ("Listing tidak ditemukan.", "No such listing.")),
    (re.compile(r"no capture with id"), ("Tangkapan tidak ditemukan.", "No such capture.")),
    (re.compile(r"no schedule named"), ("Jadwal tidak ditemukan.", "No such schedule.")),
    (re.compile(r"schedule .* exists"), ("Nama jadwal sudah dipakai.", "A schedule with this name exists.")),
    (re.compile(r"number out of range"), ("Angka di luar jangkauan.", "Number out of range.")),
)


# "needs attention" messages as crawler.extensions.health_checks and SweepHealth write them (English, for the
# command line); the platform prefix is taken off before matching
ATTENTION: tuple[tuple[re.Pattern[str], tuple[str, str]], ...] = (
    (
        re.compile(r"^(\d+) responses did not match the profile's paths"),
        (
            "{0} jawaban tidak cocok dengan pola profil (tampilan situs berubah?)",
            "{0} responses did not match the profile's paths (a redesign?)",
        ),
    ),
    (
        re.compile(r"^(\d+) of (\S+) searches stayed blocked after retries"),
        (
            "{0} dari {1} pencarian tetap terblokir setelah dicoba ulang",
            "{0} of {1} searches stayed blocked after retries",
        ),
    ),
    (
        re.compile(r"^no listings for any query"),
        (
            "tidak ada listing untuk kueri mana pun — terblokir, rusak, atau berubah; bukan berarti bersih",
            "no listings for any query — blocked, broken, or changed; not clean",
        ),
    ),
    (
        re.compile(r"^(\d+) errors and no readable response"),
        ("{0} galat dan tidak ada jawaban yang terbaca", "{0} errors and no readable response"),
    ),
    (
        re.compile(r"^sandbox guard refused (\d+) requests"),
        ("penjaga sandbox menolak {0} permintaan", "sandbox guard refused {0} requests"),
    ),
    (
        re.compile(r"^(\d+) items failed in the pipelines"),
        (
            "{0} item gagal diproses (tidak tersimpan); lihat log",
            "{0} items failed in the pipelines (not stored); see the log",
        ),
    ),
)


def attention_text(message: str, lang: str) -> str:
    """A sweep's "needs attention" message in the page's language when it is a known one."""
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0
    for pattern, texts in ATTENTION:
        match = pattern.search(message)
        if match:
            return texts[index].format(*match.groups())
    return message


def translator(lang: str) -> Callable[..., str]:
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str, **values: object) -> str:
        entry = MESSAGES.get(key)
        text = (entry[index] or entry[0]) if entry else key
        return text.format(**values) if values else text

    return t


def value_translator(lang: str) -> Callable[[str, object], str]:
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def v(kind: str, value: object) -> str:
        if value is None:
            return "-"
        entry = VALUES.get(kind, {}).get(str(value))
        return entry[index] if entry else str(value)

    return v


def error_text(message: str, lang: str) -> str:
    """A service error in the page's language when it is a known one, else as written."""
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0
    for pattern, texts in ERRORS:
        match = pattern.search(message)
        if match:
            return texts[index].format(*match.groups())
    return message


def duration(seconds: int, lang: str) -> str:
    """``45 detik`` / ``3 menit`` (rounded up) in the page's language."""
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0
    if seconds < 60:
        return f"{seconds} " + ("detik", "seconds")[index]
    minutes = -(-seconds // 60)
    return f"{minutes} " + ("menit", "minutes" if minutes > 1 else "minute")[index]


def pick_language(cookie: str | None) -> str:
    return cookie if cookie in LANGUAGES else DEFAULT_LANGUAGE


def wib(value: datetime | None, tz: ZoneInfo, with_zone: bool = True) -> str:
    """``2026-03-05 10:30 WIB`` for an aware UTC datetime; ``-`` for None."""
    if value is None:
        return "-"
    local = value.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M") + (f" {local.tzname()}" if with_zone else "")
