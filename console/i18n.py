"""Console wording in Bahasa Indonesia (default) and English, and WIB time formatting.

Templates call ``t("key")``; the language comes from the ``lang`` cookie (``/lang/en``, ``/lang/id`` set
it). A key missing from a language falls back to Indonesian, then to the key itself, so a new page never
breaks for want of a translation. To add a language, add a column to :data:`MESSAGES` entries and its code
to :data:`LANGUAGES`. Times: every record is UTC; :func:`wib` shows them in the settings' ``timezone``
(``Asia/Jakarta`` by default) with the zone's abbreviation.
"""

from __future__ import annotations

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
    "audit": ("Audit", "Audit"),
    "evidence": ("Bukti", "Evidence"),
    "sellers": ("Penjual", "Sellers"),
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
    "skip": ("Lewati", "Skip"),
    "previous": ("Sebelumnya", "Previous"),
    "next": ("Berikutnya", "Next"),
    "reason": ("Alasan", "Reason"),
    "cancel": ("Batal", "Cancel"),
    "queue_empty": (
        "Antrean kosong: semua kandidat sudah ditinjau.",
        "Queue empty: every candidate is decided.",
    ),
    "keys_help": (
        "Tombol: j/k pindah, a setujui, r tolak (lalu 1–6 pilih alasan), Esc batal.",
        "Keys: j/k move, a approve, r reject (then 1–6 picks the reason), Esc cancels.",
    ),
    "candidate_of": ("Kandidat {pos} dari {total}", "Candidate {pos} of {total}"),
    "score": ("Skor", "Score"),
    "verdict": ("Vonis", "Verdict"),
    "price": ("Harga", "Price"),
    "seller": ("Penjual", "Seller"),
    "platform": ("Platform", "Platform"),
    "title": ("Judul", "Title"),
    "signals": ("Sinyal yang cocok", "Matched signals"),
    "screenshot": ("Tangkapan layar", "Screenshot"),
    "no_screenshot": ("Belum ada tangkapan layar.", "No screenshot captured."),
    "seller_history": ("Riwayat penjual", "Seller history"),
    "relisting": ("Unggah ulang", "Relisting"),
    "relist_of": ("Unggahan ulang dari", "Relisted from"),
    "relisted_as": ("Diunggah ulang sebagai", "Relisted as"),
    "bulk": ("Aksi massal", "Bulk actions"),
    "bulk_confirm": (
        "Yakin? Ini berlaku untuk semua yang dicentang.",
        "Sure? This applies to every ticked row.",
    ),
    "selected": ("Tercentang", "Selected"),
    "approved_n": ("{n} disetujui", "{n} approved"),
    "rejected_n": ("{n} ditolak", "{n} rejected"),
    "candidates_waiting": ("Kandidat menunggu", "Candidates waiting"),
    "batches_awaiting": ("Batch menunggu cek ulang", "Batches awaiting rechecks"),
    "last_runs": ("Penyisiran terakhir", "Last sweep runs"),
    "health": ("Kesehatan", "Health"),
    "needs_attention": ("Perlu perhatian", "Needs attention"),
    "removal_chart": ("Penghapusan dari waktu ke waktu", "Removals over time"),
    "no_data": ("Belum ada data.", "No data yet."),
    "started": ("Mulai", "Started"),
    "status": ("Status", "Status"),
    "name": ("Nama", "Name"),
    "schedule": ("Jadwal", "Schedule"),
    "paused": ("Dijeda", "Paused"),
    "pause": ("Jeda", "Pause"),
    "resume": ("Lanjutkan", "Resume"),
    "run_now": ("Jalankan sekarang", "Run now"),
    "history": ("Riwayat", "History"),
    "create": ("Buat", "Create"),
    "platforms": ("Platform", "Platforms"),
    "active_terms": ("Leksikon aktif", "Active lexicon"),
    "proposed_terms": ("Istilah usulan", "Proposed terms"),
    "precision": ("Presisi", "Precision"),
    "examples": ("Contoh", "Examples"),
    "create_batch": ("Buat batch dari item yang disetujui", "Create a batch from approved items"),
    "batch_name": ("Nama batch", "Batch name"),
    "files": ("Berkas", "Files"),
    "mark_sent": ("Tandai terkirim", "Mark sent"),
    "channel": ("Kanal", "Channel"),
    "sent_at": ("Waktu kirim", "Sent at"),
    "items": ("Item", "Items"),
    "created": ("Dibuat", "Created"),
    "verdicts": ("Tabel vonis", "Verdict table"),
    "requested": ("Diminta", "Requested"),
    "removed": ("Dihapus", "Removed"),
    "hidden": ("Disembunyikan", "Hidden"),
    "live": ("Masih tayang", "Live"),
    "unobservable": ("Tak teramati", "Unobservable"),
    "unchecked": ("Belum dicek", "Unchecked"),
    "relisted": ("Diunggah ulang", "Relisted"),
    "median_hours": ("Median jam hingga dihapus", "Median hours to removal"),
    "p90_hours": ("P90 jam", "P90 hours"),
    "report_download": ("Unduh laporan", "Download report"),
    "capture": ("Tangkapan", "Capture"),
    "digests": ("Digest", "Digests"),
    "verify_now": ("Verifikasi sekarang", "Verify now"),
    "verify_ok": ("Verifikasi berhasil: tidak ada masalah.", "Verified: no problems."),
    "verify_problems": ("Masalah ditemukan", "Problems found"),
    "download_wacz": ("Unduh WACZ", "Download WACZ"),
    "repeat_offenders": ("Pelanggar berulang", "Repeat offenders"),
    "linked_by": ("Terhubung lewat", "Linked by"),
    "confirmed": ("Terkonfirmasi", "Confirmed"),
    "forbidden": ("Peran Anda hanya baca.", "Your role is read-only."),
    "csrf_failed": ("Token formulir tidak sah; muat ulang halaman.", "Invalid form token; reload the page."),
    "not_found": ("Tidak ditemukan.", "Not found."),
    "invalid_input": (
        "Alamat atau isian tidak sah; periksa lalu coba lagi.",
        "The address or a field is not valid; check it and try again.",
    ),
    "check_fields": ("Periksa", "Check"),
    "saved": ("Tersimpan.", "Saved."),
    "language": ("English", "Bahasa Indonesia"),
    "custody_note": (
        "Setiap aksi dicatat atas nama Anda di log lacak-bukti.",
        "Every action is recorded under your name in the custody log.",
    ),
}


def translator(lang: str) -> Callable[..., str]:
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str, **values: object) -> str:
        entry = MESSAGES.get(key)
        text = (entry[index] or entry[0]) if entry else key
        return text.format(**values) if values else text

    return t


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
