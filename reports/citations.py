"""Full references: each method's paper, each paper a published number comes from
(``bgbench.reports.published``), and the datasets; as text and as BibTeX.

``ENTRIES``: BibTeX key -> ``Entry`` (type, authors, title, venue, year and what else the
record gives). ``METHODS``: method name -> its key (frame differencing and the temporal
median are textbook baselines with no paper of their own: absent). ``PAPERS``: the
``papers/NNN`` of a published number's source -> its key. ``DATASETS``: dataset -> key.

Where the data come from: papers/004 prints its authors, title, journal and DOI; papers/000
prints its first author and the start of its title in its running head ("Mondéjar-Guerra et
al.: An end-to-end deep learning approach"), in the BMVC format; papers/001 and papers/002
print neither (their abstracts match the ICME 2017 paper and arXiv:2106.03776 v1 given
here); papers/003 (in Chinese) prints no title page: its title is the abstract's own
description of the method, and its authors, venue and year are not in the text we have,
which the entry says (``missing``) rather than guess. The classical methods' and datasets'
references are their authors' publications, as the papers in papers/ cite them.

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
    "mondejar2019bmnbsn": _e(
        "inproceedings", "Mondéjar-Guerra, Víctor M. and Rouco, José and Novo, Jorge and Ortega, Marcos",
        "An End-to-End Deep Learning Approach for Simultaneous Background Modeling and Subtraction",
        "Proceedings of the British Machine Vision Conference (BMVC)", 2019),
    "zhao2017twostage": _e(
        "inproceedings", "Zhao, Xu and Chen, Yingying and Tang, Ming and Wang, Jinqiao",
        "Joint Background Reconstruction and Foreground Segmentation via a Two-Stage Convolutional Neural Network",
        "IEEE International Conference on Multimedia and Expo (ICME)", 2017, pages="343--348"),
    "ha2021cdnmedal": _e(
        "misc", "Ha, Synh Viet-Uyen and Nguyen, Cuong Tien and Phan, Hung Ngoc and Chung, Nhat Minh and Ha, Phuong Hoai",
        "CDN-MEDAL: Two-stage Density and Difference Approximation Framework for Motion Analysis",
        "arXiv preprint arXiv:2106.03776", 2021, eprint="2106.03776", archiveprefix="arXiv"),
    "siamesefcn": _e(
        "misc", "", "A foreground subtraction algorithm based on a fully convolutional siamese neural network (in Chinese)",
        "", None, missing="papers/003: the text we have has no title page; the title is its abstract's description, "
                          "and its authors, venue and year are not given"),
    "liang2023crossnet": _e(
        "article", "Liang, Dong and Zhang, Dong and Wang, Qiong and Wei, Zongqi and Zhang, Liyan",
        "CrossNet: Cross-scene Background Subtraction Network via 3D Optical Flow",
        "IEEE Transactions on Multimedia", 2023, doi="10.1109/TMM.2023.3266608"),
    # --- the classical methods ------------------------------------------------------------
    "stauffer1999adaptive": _e(
        "inproceedings", "Stauffer, Chris and Grimson, W. Eric L.", "Adaptive background mixture models for real-time "
        "tracking", "IEEE Conference on Computer Vision and Pattern Recognition (CVPR)", 1999, volume="2",
        pages="246--252"),
    "zivkovic2004improved": _e(
        "inproceedings", "Zivkovic, Zoran", "Improved adaptive Gaussian mixture model for background subtraction",
        "International Conference on Pattern Recognition (ICPR)", 2004, volume="2", pages="28--31"),
    "zivkovic2006efficient": _e(
        "article", "Zivkovic, Zoran and van der Heijden, Ferdinand", "Efficient adaptive density estimation per image "
        "pixel for the task of background subtraction", "Pattern Recognition Letters", 2006, volume="27",
        number="7", pages="773--780"),
    "kaewtrakulpong2001improved": _e(
        "inproceedings", "KaewTraKulPong, Pakorn and Bowden, Richard", "An improved adaptive background mixture model "
        "for real-time tracking with shadow detection", "European Workshop on Advanced Video Based Surveillance "
        "Systems (AVBS)", 2001),
    "stcharles2015subsense": _e(
        "article", "St-Charles, Pierre-Luc and Bilodeau, Guillaume-Alexandre and Bergevin, Robert",
        "SuBSENSE: A Universal Change Detection Method With Local Adaptive Sensitivity",
        "IEEE Transactions on Image Processing", 2015, volume="24", number="1", pages="359--373"),
    "stcharles2015pawcs": _e(
        "inproceedings", "St-Charles, Pierre-Luc and Bilodeau, Guillaume-Alexandre and Bergevin, Robert",
        "A Self-Adjusting Approach to Change Detection Based on Background Word Consensus",
        "IEEE Winter Conference on Applications of Computer Vision (WACV)", 2015, pages="990--997"),
    "barnich2011vibe": _e(
        "article", "Barnich, Olivier and Van Droogenbroeck, Marc", "ViBe: A Universal Background Subtraction "
        "Algorithm for Video Sequences", "IEEE Transactions on Image Processing", 2011, volume="20", number="6",
        pages="1709--1724"),
    "stcharles2014lobster": _e(
        "inproceedings", "St-Charles, Pierre-Luc and Bilodeau, Guillaume-Alexandre", "Improving background "
        "subtraction using Local Binary Similarity Patterns", "IEEE Winter Conference on Applications of Computer "
        "Vision (WACV)", 2014, pages="509--515"),
    "hofmann2012pbas": _e(
        "inproceedings", "Hofmann, Martin and Tiefenbacher, Philipp and Rigoll, Gerhard", "Background segmentation "
        "with feedback: The Pixel-Based Adaptive Segmenter", "IEEE Conference on Computer Vision and Pattern "
        "Recognition Workshops (CVPRW)", 2012, pages="38--43"),
    "guo2016lsbp": _e(
        "inproceedings", "Guo, Lili and Xu, Dan and Qiang, Zhenping", "Background Subtraction Using Local SVD Binary "
        "Pattern", "IEEE Conference on Computer Vision and Pattern Recognition Workshops (CVPRW)", 2016,
        pages="86--94"),
    "opencv_gsoc": _e(
        "misc", "{OpenCV contributors}", "BackgroundSubtractorGSOC (opencv\\_contrib, module bgsegm)",
        "\\url{https://github.com/opencv/opencv_contrib}", 2017,
        missing="no paper: written for Google Summer of Code 2017; cite the software"),
    "zeevi2016cnt": _e(
        "misc", "Zeevi, Sagi", "BackgroundSubtractorCNT", "\\url{https://github.com/sagi-z/BackgroundSubtractorCNT}",
        2016, missing="no paper: cite the software (also in opencv\\_contrib, module bgsegm)"),
    # --- the datasets -------------------------------------------------------------------------
    "wang2014cdnet": _e(
        "inproceedings", "Wang, Yi and Jodoin, Pierre-Marc and Porikli, Fatih and Konrad, Janusz and Benezeth, "
        "Yannick and Ishwar, Prakash", "CDnet 2014: An Expanded Change Detection Benchmark Dataset",
        "IEEE Conference on Computer Vision and Pattern Recognition Workshops (CVPRW)", 2014, pages="387--394"),
    "maddalena2015sbi": _e(
        "inproceedings", "Maddalena, Lucia and Petrosino, Alfredo", "Towards Benchmarking Scene Background "
        "Initialization", "New Trends in Image Analysis and Processing -- ICIAP 2015 Workshops", 2015,
        series="LNCS", volume="9281", pages="469--476"),
    "mahadevan2010ucsd": _e(
        "article", "Mahadevan, Vijay and Vasconcelos, Nuno", "Spatiotemporal Saliency in Dynamic Scenes",
        "IEEE Transactions on Pattern Analysis and Machine Intelligence", 2010, volume="32", number="1",
        pages="171--177"),
    "toyama1999wallflower": _e(
        "inproceedings", "Toyama, Kentaro and Krumm, John and Brumitt, Barry and Meyers, Brian", "Wallflower: "
        "Principles and Practice of Background Maintenance", "IEEE International Conference on Computer Vision "
        "(ICCV)", 1999, volume="1", pages="255--261"),
}

METHODS: dict[str, str] = {
    "bmn_bsn": "mondejar2019bmnbsn", "two_stage_cnn": "zhao2017twostage", "cdn_medal": "ha2021cdnmedal",
    "siamese_fcn": "siamesefcn", "crossnet": "liang2023crossnet",
    "gmm_sg": "stauffer1999adaptive", "gmm_zivkovic": "zivkovic2004improved", "knn": "zivkovic2006efficient",
    "mog_kb": "kaewtrakulpong2001improved", "subsense": "stcharles2015subsense", "pawcs": "stcharles2015pawcs",
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
    if "volume" in extra:
        parts.append(f"vol. {extra['volume']}" + (f", no. {extra['number']}" if "number" in extra else ""))
    if "pages" in extra:
        parts.append(f"pp. {extra['pages'].replace('--', '-')}")
    if e.year:
        parts.append(str(e.year))
    if "doi" in extra:
        parts.append(f"doi:{extra['doi']}")
    text = ", ".join(parts) + "."
    return f"{text} ({e.missing}.)" if e.missing else text


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
