"""Full references: each method's paper, each paper a published number comes from
(``bgbench.reports.published``), and the datasets; as text and as BibTeX.

``ENTRIES``: BibTeX key -> ``Entry`` (type, authors, title, venue, year and what else the
record gives). ``METHODS``: method name -> its key (frame differencing and the temporal
median are textbook baselines with no paper of their own: absent). ``PAPERS``: the
``papers/NNN`` of a published number's source -> its key. ``DATASETS``: dataset -> key.

Every field below was checked against the paper texts in ../shared/papers or a public
source (the comment above each entry names it; docs/citations.md lists them all). What no
source confirmed is left out, and the entry's ``missing`` says what (it becomes the BibTeX
``note``); nothing is filled in from memory. An entry that lacks its venue or year is a
``misc``, so that BibTeX does not complain of empty required fields.

A report writes ``references.bib`` (``bibtex``) beside its LaTeX tables, which cite the
methods they show (``cite_keys``), and lists the full references of the published numbers
it prints (``reference_text``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Entry:
    kind: str  # BibTeX type: article, inproceedings, misc
    authors: tuple[str, ...]  # "Last, First" each
    title: str
    venue: str  # journal, booktitle or howpublished
    year: int | None
    extra: tuple[tuple[str, str], ...] = ()  # volume, number, pages, doi, publisher, eprint ...
    missing: str = ""  # what the record cannot give, said in the entry's note

    @property
    def venue_field(self) -> str:
        return {"article": "journal", "inproceedings": "booktitle"}.get(self.kind, "howpublished")


def _e(kind: str, authors: str, title: str, venue: str, year: int | None, missing: str = "", **extra: str) -> Entry:
    return Entry(kind, tuple(a.strip() for a in authors.split(" and ") if a.strip()), title, venue, year,
                 tuple(extra.items()), missing)


ENTRIES: dict[str, Entry] = {
    # --- the deep methods' papers (papers/000-004) ---------------------------------------
    # papers/000 prints no title page, only its running head "MONDÉJAR-GUERRA ET AL.: AN
    # END-TO-END DEEP LEARNING APPROACH"; no public source found confirmed more.
    "mondejar2019bmnbsn": _e(
        "misc", "Mondéjar-Guerra", "An End-to-End Deep Learning Approach", "", None,
        missing="papers/000 prints only its running head, 'Mondéjar-Guerra et al.: An End-to-End Deep Learning "
                "Approach'; the full title, the first author's first name, the other authors, the venue (the layout "
                "resembles the BMVC template's) and the year are unconfirmed"),
    # papers/001's abstract = arXiv:1707.07584 (arxiv-vanity.com/papers/1707.07584, paperswithcode);
    # authors from the arXiv listing (2017-07-24). The ICME 2017 version: no source found.
    "zhao2017twostage": _e(
        "misc", "Zhao, Xu and Chen, Yingying and Tang, Ming and Wang, Jinqiao",
        "Joint Background Reconstruction and Foreground Segmentation via a Two-Stage Convolutional Neural Network",
        "arXiv preprint arXiv:1707.07584", 2017, eprint="1707.07584", archiveprefix="arXiv",
        missing="a conference version (IEEE ICME 2017) with its pages is unconfirmed"),
    # papers/002's abstract = arXiv:2106.03776 v1 (deepai.com, 06/07/2021, "by Synh Viet-Uyen Ha,
    # et al."); later versions have another abstract. No source found listed the co-authors.
    "ha2021cdnmedal": _e(
        "misc", "Ha, Synh Viet-Uyen",
        "CDN-MEDAL: Two-stage Density and Difference Approximation Framework for Motion Analysis",
        "arXiv preprint arXiv:2106.03776", 2021, eprint="2106.03776", archiveprefix="arXiv",
        missing="authors beyond the first unconfirmed"),
    "siamesefcn": _e(
        "misc", "", "A foreground subtraction algorithm based on a fully convolutional siamese neural network (in Chinese)",
        "", None, missing="papers/003: the text we have has no title page; the title is its abstract's description, "
                          "and its authors, venue and year are not given"),
    # papers/004 prints title, authors, journal and DOI (accepted version); the issue year:
    # openreview.net/forum?id=WUjOVRWNTb (dblp record: IEEE Trans. Multim. 2025).
    "liang2023crossnet": _e(
        "article", "Liang, Dong and Zhang, Dong and Wang, Qiong and Wei, Zongqi and Zhang, Liyan",
        "CrossNet: Cross-scene Background Subtraction Network via 3D Optical Flow",
        "IEEE Transactions on Multimedia", 2025, doi="10.1109/TMM.2023.3266608",
        missing="volume and pages of the 2025 issue unconfirmed (the DOI is the 2023 accepted version's)"),
    # --- the classical methods ------------------------------------------------------------
    # bib entries in public code (e.g. author, vol. 2, pp. 246-252) and reference lists (DOI)
    "stauffer1999adaptive": _e(
        "inproceedings", "Stauffer, Chris and Grimson, W. Eric L.", "Adaptive background mixture models for real-time "
        "tracking", "IEEE Computer Society Conference on Computer Vision and Pattern Recognition (CVPR)", 1999,
        volume="2", pages="246--252", doi="10.1109/CVPR.1999.784637"),
    # OpenCV's MOG2 source header ("International Conference Pattern Recognition, UK, August,
    # 2004"); reference lists: "Proceedings of the 17th ICPR, Vol. 2, pp. 28-31", DOI
    "zivkovic2004improved": _e(
        "inproceedings", "Zivkovic, Zoran", "Improved adaptive Gaussian mixture model for background subtraction",
        "Proceedings of the 17th International Conference on Pattern Recognition (ICPR)", 2004, volume="2",
        pages="28--31", doi="10.1109/ICPR.2004.1333992"),
    # reference lists: "Pattern Recognition Letters, vol. 27, no. 7, pp. 773-780, 2006, doi: ..."
    "zivkovic2006efficient": _e(
        "article", "Zivkovic, Zoran and van der Heijden, Ferdinand", "Efficient adaptive density estimation per image "
        "pixel for the task of background subtraction", "Pattern Recognition Letters", 2006, volume="27",
        number="7", pages="773--780", doi="10.1016/j.patrec.2005.11.005"),
    # MathWorks/OpenCV sources: "In Proc. 2nd European Workshop on Advanced Video Based
    # Surveillance Systems, AVBS01 (September 2001)"; opencv_contrib bgsegm.bib gives the names
    # (and the later book chapter: Video-Based Surveillance Systems, Springer, 2002, pp. 135-144)
    "kaewtrakulpong2001improved": _e(
        "inproceedings", "KaewTraKulPong, Pakorn and Bowden, Richard", "An improved adaptive background mixture model "
        "for real-time tracking with shadow detection", "Proceedings of the 2nd European Workshop on Advanced Video "
        "Based Surveillance Systems (AVBS)", 2001),
    # the paper's title page; reference lists: "IEEE Trans. Image Process., vol. 24, no. 1,
    # pp. 359-373, Jan. 2015", DOI 10.1109/TIP.2014.2378053
    "stcharles2015subsense": _e(
        "article", "St-Charles, Pierre-Luc and Bilodeau, Guillaume-Alexandre and Bergevin, Robert",
        "SuBSENSE: A Universal Change Detection Method With Local Adaptive Sensitivity",
        "IEEE Transactions on Image Processing", 2015, volume="24", number="1", pages="359--373",
        doi="10.1109/TIP.2014.2378053"),
    # the paper's title page ("IEEE TRANSACTIONS ON IMAGE PROCESSING ... 2016"); the authors'
    # code (litiv, BackgroundSubtractorPAWCS.h): "IEEE Trans. on Image Processing, vol. 25 (10), 2016"
    "stcharles2016pawcs": _e(
        "article", "St-Charles, Pierre-Luc and Bilodeau, Guillaume-Alexandre and Bergevin, Robert",
        "Universal Background Subtraction Using Word Consensus Models", "IEEE Transactions on Image Processing", 2016,
        volume="25", number="10", missing="pages unconfirmed"),
    # ViBe headers in public code and reference lists: "IEEE TIP 20(6):1709-1724, June 2011", DOI
    "barnich2011vibe": _e(
        "article", "Barnich, Olivier and Van Droogenbroeck, Marc", "ViBe: A Universal Background Subtraction "
        "Algorithm for Video Sequences", "IEEE Transactions on Image Processing", 2011, volume="20", number="6",
        pages="1709--1724", doi="10.1109/TIP.2010.2101613"),
    # the authors' code (litiv): "in WACV 2014", DOI 10.1109/WACV.2014.6836059
    "stcharles2014lobster": _e(
        "inproceedings", "St-Charles, Pierre-Luc and Bilodeau, Guillaume-Alexandre", "Improving background "
        "subtraction using Local Binary Similarity Patterns", "IEEE Winter Conference on Applications of Computer "
        "Vision (WACV)", 2014, doi="10.1109/WACV.2014.6836059", missing="pages unconfirmed"),
    # opencv_contrib saliency header: "Computer Vision and Pattern Recognition Workshops (CVPRW),
    # 2012 IEEE Computer Society Conference on"
    "hofmann2012pbas": _e(
        "inproceedings", "Hofmann, Martin and Tiefenbacher, Philipp and Rigoll, Gerhard", "Background segmentation "
        "with feedback: The Pixel-Based Adaptive Segmenter", "IEEE Computer Society Conference on Computer Vision and "
        "Pattern Recognition Workshops (CVPRW)", 2012, missing="pages unconfirmed"),
    # the paper's title page (Lili Guo, Dan Xu, Zhenping Qiang; CVF open access 2016 workshops);
    # pages from one public source ("2016 IEEE CVPRW, pages 1159-1167")
    "guo2016lsbp": _e(
        "inproceedings", "Guo, Lili and Xu, Dan and Qiang, Zhenping", "Background Subtraction Using Local SVD Binary "
        "Pattern", "IEEE Conference on Computer Vision and Pattern Recognition Workshops (CVPRW)", 2016,
        pages="1159--1167"),
    # opencv_contrib bgfg_gsoc.cpp: "@author Vladislav Samsonov"; "implemented during GSOC and
    # was not originated from any paper"
    "opencv_gsoc": _e(
        "misc", "Samsonov, Vladislav", "BackgroundSubtractorGSOC (opencv\\_contrib, module bgsegm)",
        "\\url{https://github.com/opencv/opencv_contrib}", None,
        missing="no paper: written for Google Summer of Code, not from any paper (OpenCV's documentation); cite the "
                "software; the year is unconfirmed"),
    # the repository's LICENSE: "Copyright (c) 2016, Sagi Zeevi"; OpenCV: "Algorithm by Sagi Zeevi"
    "zeevi2016cnt": _e(
        "misc", "Zeevi, Sagi", "BackgroundSubtractorCNT", "\\url{https://github.com/sagi-z/BackgroundSubtractorCNT}",
        2016, missing="no paper: cite the software (also in opencv\\_contrib, module bgsegm)"),
    # --- the datasets -------------------------------------------------------------------------
    # bib entries in public code (full names); reference lists: "Proceedings of the 2014 IEEE
    # CVPRW, Columbus, pp. 393-400, DOI 10.1109/CVPRW.2014.126" (the CVF copy is paginated 387-394)
    "wang2014cdnet": _e(
        "inproceedings", "Wang, Yi and Jodoin, Pierre-Marc and Porikli, Fatih and Konrad, Janusz and Benezeth, "
        "Yannick and Ishwar, Prakash", "CDnet 2014: An Expanded Change Detection Benchmark Dataset",
        "IEEE Conference on Computer Vision and Pattern Recognition Workshops (CVPRW)", 2014, pages="393--400",
        doi="10.1109/CVPRW.2014.126"),
    # LaBGen READMEs: "ICIAP Workshops, 9281:469-476, 2015"; Lecture Notes in Computer Science,
    # volume 9281, Springer (Laugraud et al., same workshop); names from a bib entry in public code
    "maddalena2015sbi": _e(
        "inproceedings", "Maddalena, Lucia and Petrosino, Alfredo", "Towards Benchmarking Scene Background "
        "Initialization", "International Conference on Image Analysis and Processing (ICIAP) Workshops", 2015,
        series="Lecture Notes in Computer Science", volume="9281", pages="469--476", publisher="Springer"),
    # the paper's record (authors, title, IEEE TPAMI, 2010)
    "mahadevan2010ucsd": _e(
        "article", "Mahadevan, Vijay and Vasconcelos, Nuno", "Spatiotemporal Saliency in Dynamic Scenes",
        "IEEE Transactions on Pattern Analysis and Machine Intelligence", 2010,
        missing="volume, number and pages unconfirmed"),
    # reference lists: "K. Toyama, J. Krumm, B. Brumitt, and B. Meyers, Proceedings of the Seventh
    # IEEE ICCV, Vol. 1, pp. 255-261, 1999, doi 10.1109/ICCV.1999.791228" (first names: initials)
    "toyama1999wallflower": _e(
        "inproceedings", "Toyama, K. and Krumm, J. and Brumitt, B. and Meyers, B.", "Wallflower: "
        "Principles and Practice of Background Maintenance", "Proceedings of the Seventh IEEE International "
        "Conference on Computer Vision (ICCV)", 1999, volume="1", pages="255--261", doi="10.1109/ICCV.1999.791228"),
}

METHODS: dict[str, str] = {
    "bmn_bsn": "mondejar2019bmnbsn", "two_stage_cnn": "zhao2017twostage", "cdn_medal": "ha2021cdnmedal",
    "siamese_fcn": "siamesefcn", "crossnet": "liang2023crossnet",
    "gmm_sg": "stauffer1999adaptive", "gmm_zivkovic": "zivkovic2004improved", "knn": "zivkovic2006efficient",
    "mog_kb": "kaewtrakulpong2001improved", "subsense": "stcharles2015subsense", "pawcs": "stcharles2016pawcs",
    "vibe": "barnich2011vibe", "lobster": "stcharles2014lobster", "pbas": "hofmann2012pbas", "lsbp": "guo2016lsbp",
    "gsoc": "opencv_gsoc", "cnt": "zeevi2016cnt",
}
NO_PAPER = {"frame_difference": "a textbook baseline, no paper of its own",
            "temporal_median": "a textbook baseline, no paper of its own",
            "masks": "external masks: the method is whatever tool wrote them"}
PAPERS: dict[str, str] = {"papers/000": "mondejar2019bmnbsn", "papers/001": "zhao2017twostage",
                          "papers/002": "ha2021cdnmedal", "papers/003": "siamesefcn",
                          "papers/004": "liang2023crossnet"}
DATASETS: dict[str, str] = {"CDnet2014": "wang2014cdnet", "CDnet2012": "wang2014cdnet", "SBI2015": "maddalena2015sbi",
                            "UCSD": "mahadevan2010ucsd", "Wallflower": "toyama1999wallflower"}


def method_key(method: str) -> str | None:
    """The BibTeX key of a method's paper (a label's method: ``crossnet[paper]`` -> crossnet)."""
    return METHODS.get(method.split("[", 1)[0])


def source_key(source: str) -> str | None:
    """The key of a published number's source, e.g. "papers/000 Table 2"."""
    m = re.match(r"papers/\d{3}", source)
    return PAPERS.get(m.group(0)) if m else None


def _plain(s: str) -> str:
    """BibTeX markup out, for text: braces, ``\\_``, ``\\url{}``, ``--``."""
    s = re.sub(r"\\url\{([^}]*)\}", r"\1", s).replace("\\_", "_").replace("--", "-")
    return s.replace("{", "").replace("}", "")


def _name(author: str) -> str:
    if "," not in author:
        return _plain(author)
    last, first = (x.strip() for x in author.split(",", 1))
    return f"{first} {last}"


def reference_text(key: str) -> str:
    """A full reference in words: authors, "title", venue, details, year (and what is missing)."""
    e = ENTRIES[key]
    names = [_name(a) for a in e.authors]
    who = (", ".join(names[:-1]) + " and " + names[-1]) if len(names) > 1 else "".join(names)
    extra = dict(e.extra)
    parts = [p for p in (who, f'"{_plain(e.title)}"', _plain(e.venue)) if p]
    if "series" in extra:
        parts.append(_plain(extra["series"]))
    if "volume" in extra:
        parts.append(f"vol. {extra['volume']}" + (f", no. {extra['number']}" if "number" in extra else ""))
    if "pages" in extra:
        parts.append(f"pp. {extra['pages'].replace('--', '-')}")
    if e.year:
        parts.append(str(e.year))
    if "doi" in extra:
        parts.append(f"doi:{extra['doi']}")
    text = ", ".join(parts) + "."
    return f"{text} ({_plain(e.missing)}.)" if e.missing else text


def _bib_value(v: str) -> str:
    return "{" + v + "}"


def bibtex(keys: Iterable[str] | None = None) -> str:
    """BibTeX entries for ``keys`` (default: all), in key order, each once."""
    out = []
    for key in sorted(set(ENTRIES if keys is None else keys)):
        e = ENTRIES[key]
        fields: list[tuple[str, str]] = []
        if e.authors:
            fields.append(("author", " and ".join(e.authors)))
        fields.append(("title", "{" + e.title + "}"))  # double braces: the case as written
        if e.venue:
            fields.append((e.venue_field, e.venue))
        if e.year:
            fields.append(("year", str(e.year)))
        fields += list(e.extra)
        if e.missing:
            fields.append(("note", e.missing))
        body = ",\n".join(f"  {k} = {_bib_value(v)}" for k, v in fields)
        out.append(f"@{e.kind}{{{key},\n{body}\n}}\n")
    return "\n".join(out)


def cite_keys(labels: Iterable[str]) -> list[tuple[str, str]]:
    """(label, key) for each label whose method has a paper, in the labels' order."""
    return [(label, k) for label in labels if (k := method_key(label))]
