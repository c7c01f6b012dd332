# ruff: noqa: E501  (judgment sentences and character tables read best on one line)
"""A labelled corpus of synthetic judgments: personal data injected at known places, clean twins.

Five case types (criminal, civil contract, divorce, mediation, administrative)
built from realistic judgment wording. Every injected value is recorded as a
``Label`` (the rule that must catch it and the value itself); do-not-publish
grounds are document-level labels. Each dirty document has a clean twin: the
same text with every name already pseudonymised and every identifier masked,
which must come out with no findings. ``render`` writes a document as .txt
(GB18030), .docx (body, a table, header, footer, a comment, properties), .pdf
(text layer) or .ofd; the same labels hold for every format because they are
matched on the text a finding covers, not on offsets.

Identifiers are generated with their real checksums (GB 11643, GB 32100, Luhn).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from agent.detectors.documents.checker.validators import id18_check_char, luhn, uscc_check_char
from tests.agent.detectors.documents.docfiles import DocxContent, write_docx, write_ofd, write_pdf

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
COMPOUND = ["欧阳", "司马", "诸葛", "上官"]
#: Given-name characters by frequency in real names (including 生, 文, 国, which are also words).
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰文建国红志海春燕云飞鹏辉斌波宇浩凯晨阳佳琳欣怡婷雪梅萍晶慧颖生林峰坤瑞祥"
REGIONS = [
    "110105",
    "310104",
    "440305",
    "410105",
    "510107",
    "330106",
    "320102",
    "420106",
    "370102",
    "610113",
]
CITIES = [
    ("河南省", "郑州市", "金水区"),
    ("北京市", "", "朝阳区"),
    ("广东省", "深圳市", "南山区"),
    ("四川省", "成都市", "武侯区"),
    ("浙江省", "杭州市", "西湖区"),
    ("湖北省", "武汉市", "洪山区"),
]
ROADS = ["文化路", "建设路", "人民路", "解放大道", "中山路", "花园路", "科技园南路"]
PLATE_PROVINCES = "京沪粤川浙鄂豫苏鲁陕"
COURTS = [
    ("北京市朝阳区人民法院", "京0105"),
    ("河南省郑州市金水区人民法院", "豫0105"),
    ("广东省深圳市南山区人民法院", "粤0305"),
    ("四川省成都市武侯区人民法院", "川0107"),
]
JUDGES = ["刘大伟", "陈红", "孙立", "黄海燕", "马骏"]
CLERKS = ["周小丽", "吴静", "郑文"]


@dataclass(frozen=True)
class Label:
    rule_id: str
    value: str | None  # None: a document-level ground (do not publish)


@dataclass
class Document:
    kind: str
    name: str
    body: list[str]
    labels: list[Label] = field(default_factory=list)
    header: str = ""
    table: list[list[str]] = field(default_factory=list)
    comment: str = ""
    title: str = ""
    clean: bool = False

    @property
    def verdict_expected(self) -> str:
        rules = {label.rule_id for label in self.labels}
        if rules & BLOCK_RULES:
            return "do_not_publish"
        return "needs_redaction" if rules else "publishable"

    def text(self) -> str:
        return "\n".join(self.body) + "\n"


#: Numbers and words that look like personal data and are not: every document carries them.
NEGATIVES = (
    "另查明，涉案发票号码13812345678，报关单号110105194912310021，合同编号HT20240101001，"
    "订单号6222021234567890，涉案金额人民币123456789元，律师执业证号14101201910123456，"
    "案件受理费50元，被告人因伤住院治疗，诉讼服务热线12368，依据法释〔2016〕19号第十条。"
)
BLOCK_RULES = {"documents.minor-defendant", "documents.mediation", "documents.family-cause"}
STRUCTURED = {
    "documents.resident-id",
    "documents.mobile-phone",
    "documents.bank-account",
    "documents.licence-plate",
    "documents.property-certificate",
    "documents.landline-phone",
}


class Generator:
    """Deterministic for a seed: the same corpus every run."""

    def __init__(self, seed: int = 2026) -> None:
        self.rng = random.Random(seed)  # noqa: S311 (a reproducible corpus, not secrets)
        self.used_names: set[str] = set()

    # ---- values
    def name(self) -> str:
        while True:
            surname = (
                self.rng.choice(COMPOUND) if self.rng.random() < 0.05 else self.rng.choice(SURNAMES)
            )
            given = "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2, 2, 2))))
            full = surname + given
            if full not in self.used_names and full not in JUDGES + CLERKS:
                self.used_names.add(full)
                return full

    def resident_id(self, born: tuple[int, int, int]) -> str:
        body = f"{self.rng.choice(REGIONS)}{born[0]:04d}{born[1]:02d}{born[2]:02d}{self.rng.randint(0, 999):03d}"
        return body + id18_check_char(body)

    def mobile(self) -> str:
        """Plain, full-width, or grouped with +86 and dashes, as clerks type them."""
        digits = (
            "1"
            + self.rng.choice("3456789")
            + "".join(str(self.rng.randint(0, 9)) for _ in range(9))
        )
        style = self.rng.random()
        if style < 0.2:
            return digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        if style < 0.35:
            return f"+86 {digits[:3]}-{digits[3:7]}-{digits[7:]}"
        return digits

    def email(self) -> str:
        user = "".join(
            self.rng.choice("abcdefghijkmnpqrstuvwxyz") for _ in range(self.rng.randint(4, 9))
        )
        return f"{user}{self.rng.randint(1, 99)}@{self.rng.choice(['qq.com', '163.com', 'example.cn'])}"

    def landline(self) -> str:
        return (
            self.rng.choice(["0371-", "010-", "(0755)", "028-"])
            + str(self.rng.randint(2, 8))
            + "".join(str(self.rng.randint(0, 9)) for _ in range(7))
        )

    def bank_card(self) -> str:
        stem = "622202" + "".join(str(self.rng.randint(0, 9)) for _ in range(12))
        for check in "0123456789":
            if luhn(stem + check):
                return stem + check
        raise AssertionError("unreachable")

    def plate(self) -> str:
        province = self.rng.choice(PLATE_PROVINCES)
        letter = self.rng.choice("ABCDEFGHJK")
        if self.rng.random() < 0.3:
            return f"{province}{letter}{self.rng.choice('DF')}{self.rng.randint(10000, 99999)}"
        chars = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
        serial = str(self.rng.randint(0, 9)) + "".join(self.rng.choice(chars) for _ in range(4))
        return f"{province}{letter}{serial}"

    def property_certificate(self) -> str:
        province = self.rng.choice("京沪粤川浙豫")
        return f"{province}({self.rng.randint(2015, 2023)}){self.rng.choice(['朝阳区', '金水区', '南山区'])}不动产权第{self.rng.randint(0, 9999999):07d}号"

    def address(self) -> tuple[str, str]:
        """(county-level prefix, the part below the county that must be deleted)."""
        province, city, county = self.rng.choice(CITIES)
        tail = (
            f"{self.rng.choice(ROADS)}{self.rng.randint(1, 300)}号{self.rng.randint(1, 30)}栋"
            f"{self.rng.randint(1, 6)}单元{self.rng.randint(101, 2802)}室"
        )
        return province + city + county, tail

    def individual_business(self) -> str:
        body = (
            "92"
            + self.rng.choice(REGIONS)
            + "MA"
            + "".join(self.rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(7))
        )
        return body + (uscc_check_char(body) or "0")

    def born(self, adult: bool = True) -> tuple[int, int, int]:
        year = self.rng.randint(1960, 1998) if adult else self.rng.randint(2007, 2008)
        return year, self.rng.randint(1, 12), self.rng.randint(1, 28)

    def court(self) -> tuple[str, str]:
        return self.rng.choice(COURTS)

    # ---- documents
    def criminal(self, index: int, minor: bool = False) -> Document:
        court, code = self.court()
        defendant, victim, witness, witness2 = self.name(), self.name(), self.name(), self.name()
        born = self.born(adult=not minor)
        id_number, phone, card, plate = (
            self.resident_id(born),
            self.mobile(),
            self.bank_card(),
            self.plate(),
        )
        prefix, tail = self.address()
        body = [
            court,
            "刑 事 判 决 书",
            f"（2024）{code}刑初{100 + index}号",
            f"公诉机关{court.replace('人民法院', '人民检察院')}。",
            f"被告人{defendant}，男，{born[0]}年{born[1]}月{born[2]}日出生，汉族，住{prefix}{tail}，公民身份号码{id_number}。",
            "辩护人李明亮，某律师事务所律师。",
            f"{court.replace('人民法院', '人民检察院')}指控被告人{defendant}犯故意伤害罪，于2024年6月1日向本院提起公诉。本院依法组成合议庭，公开开庭审理了本案。",
            f"经审理查明，2024年3月1日晚，被告人{defendant}驾驶{plate}号小型轿车行至某路口，因琐事与被害人{victim}发生争执，后持棍击打被害人{victim}头部，致其轻伤二级。",
            f"上述事实，有证人{witness}、{witness2}的证言，被告人{defendant}的供述，手机号码{phone}的通话记录及其名下银行卡{card}的交易明细等证据证实。",
            NEGATIVES,
            "本院认为，被告人的行为已构成故意伤害罪。依照《中华人民共和国刑法》第二百三十四条第一款之规定，判决如下：",
            "被告人犯故意伤害罪，判处有期徒刑一年。",
            f"审 判 长  {self.rng.choice(JUDGES)}",
            "二〇二四年九月一日",
            f"书 记 员  {self.rng.choice(CLERKS)}",
        ]
        labels = [
            Label("documents.party-name", defendant),
            Label("documents.protected-person-name", victim),
            Label("documents.protected-person-name", witness),
            Label("documents.protected-person-name", witness2),
            Label("documents.resident-id", id_number),
            Label("documents.address", tail),
            Label("documents.licence-plate", plate),
            Label("documents.mobile-phone", phone),
            Label("documents.bank-account", card),
        ]
        if minor:
            labels.append(Label("documents.minor-defendant", None))
        return Document(
            "criminal-minor" if minor else "criminal",
            f"criminal-{index}",
            body,
            labels,
            header=f"（2024）{code}刑初{100 + index}号",
            table=[["证人", witness], ["被害人", victim]],
            comment=f"核对被告人{defendant}的身份",
            title=f"{defendant}故意伤害案",
        )

    def civil(self, index: int) -> Document:
        court, code = self.court()
        plaintiff, defendant = self.name(), self.name()
        born1, born2 = self.born(), self.born()
        phone, landline, cert, business = (
            self.mobile(),
            self.landline(),
            self.property_certificate(),
            self.individual_business(),
        )
        prefix, tail = self.address()
        card = self.bank_card()
        mail, qq = self.email(), str(self.rng.randint(10000, 9999999999))
        body = [
            court,
            "民 事 判 决 书",
            f"（2024）{code}民初{200 + index}号",
            f"原告{plaintiff}，女，{born1[0]}年{born1[1]}月{born1[2]}日出生，汉族，住{prefix}{tail}。",
            f"被告{defendant}，男，{born2[0]}年{born2[1]}月{born2[2]}日出生，汉族，系个体工商户，统一社会信用代码{business}。",
            "委托诉讼代理人王建军，某律师事务所律师。",
            f"原告{plaintiff}与被告{defendant}房屋买卖合同纠纷一案，本院于2024年4月1日立案后，依法适用简易程序，公开开庭进行了审理。",
            f"原告{plaintiff}诉称，双方于2023年签订房屋买卖合同，约定被告将登记于{cert}不动产权证书项下的房屋出售给原告，原告已将购房款转入被告银行账号{card}。",
            f"被告{defendant}辩称，其联系电话{phone}、{landline}一直未变，电子邮箱{mail}，QQ号{qq}，原告从未催告。",
            NEGATIVES,
            "依照《中华人民共和国民法典》第五百七十七条之规定，判决如下：",
            "被告于本判决生效之日起十日内协助原告办理房屋过户登记手续。",
            f"审判员  {self.rng.choice(JUDGES)}",
            "二〇二四年七月一日",
            f"书记员  {self.rng.choice(CLERKS)}",
        ]
        labels = [
            Label("documents.party-name", plaintiff),
            Label("documents.party-name", defendant),
            Label("documents.address", tail),
            Label("documents.mobile-phone", phone),
            Label("documents.landline-phone", landline),
            Label("documents.property-certificate", cert),
            Label("documents.individual-business-code", business),
            Label("documents.bank-account", card),
            Label("documents.email", mail),
            Label("documents.messaging-account", qq),
        ]
        return Document(
            "civil",
            f"civil-{index}",
            body,
            labels,
            header=court,
            table=[["原告", plaintiff], ["联系电话", phone]],
            comment="已核对合同原件",
            title="房屋买卖合同纠纷",
        )

    def divorce(self, index: int) -> Document:
        court, code = self.court()
        wife, husband, child = self.name(), self.name(), self.name()
        born1, born2 = self.born(), self.born()
        body = [
            court,
            "民 事 判 决 书",
            f"（2024）{code}民初{300 + index}号",
            f"原告{wife}，女，{born1[0]}年{born1[1]}月{born1[2]}日出生，汉族。",
            f"被告{husband}，男，{born2[0]}年{born2[1]}月{born2[2]}日出生，汉族。",
            f"原告{wife}与被告{husband}离婚纠纷一案，本院依法适用普通程序，不公开开庭进行了审理。",
            f"经审理查明，原、被告于2012年登记结婚，婚后育有一子{child}，现随原告生活。",
            "准予原告与被告离婚。",
            f"审判员  {self.rng.choice(JUDGES)}",
            "二〇二四年五月一日",
            f"书记员  {self.rng.choice(CLERKS)}",
        ]
        labels = [
            Label("documents.family-cause", None),
            Label("documents.non-public-hearing", None),
            Label("documents.protected-person-name", wife),
            Label("documents.protected-person-name", husband),
            Label("documents.protected-person-name", child),
        ]
        return Document("divorce", f"divorce-{index}", body, labels, header=court, title="离婚纠纷")

    def mediation(self, index: int) -> Document:
        court, code = self.court()
        plaintiff, defendant = self.name(), self.name()
        body = [
            court,
            "民 事 调 解 书",
            f"（2024）{code}民初{400 + index}号",
            f"原告{plaintiff}，男，1980年1月1日出生。",
            f"被告{defendant}，女，1985年2月2日出生。",
            f"原告{plaintiff}与被告{defendant}民间借贷纠纷一案，本院于2024年3月1日立案。",
            "本案审理过程中，经本院主持调解，双方当事人自愿达成如下协议：被告于2024年12月31日前偿还原告借款五万元。",
            f"审判员  {self.rng.choice(JUDGES)}",
            "二〇二四年四月一日",
            f"书记员  {self.rng.choice(CLERKS)}",
        ]
        labels = [
            Label("documents.mediation", None),
            Label("documents.party-name", plaintiff),
            Label("documents.party-name", defendant),
        ]
        return Document(
            "mediation", f"mediation-{index}", body, labels, header=court, title="调解书"
        )

    def administrative(self, index: int) -> Document:
        court, code = self.court()
        plaintiff = self.name()
        born = self.born()
        phone = self.mobile()
        body = [
            court,
            "行 政 判 决 书",
            f"（2024）{code}行初{500 + index}号",
            f"原告{plaintiff}，男，{born[0]}年{born[1]}月{born[2]}日出生，汉族。",
            "被告某市某区人民政府，住所地某市某区政府路1号。",
            "法定代表人赵某，区长。",
            f"原告{plaintiff}不服被告作出的房屋征收补偿决定，于2024年2月1日向本院提起行政诉讼。原告手机{phone}。",
            NEGATIVES,
            "依照《中华人民共和国行政诉讼法》第六十九条之规定，判决如下：驳回原告的诉讼请求。",
            f"审判长  {self.rng.choice(JUDGES)}",
            "二〇二四年八月一日",
            f"书记员  {self.rng.choice(CLERKS)}",
        ]
        labels = [Label("documents.party-name", plaintiff), Label("documents.mobile-phone", phone)]
        return Document(
            "administrative",
            f"administrative-{index}",
            body,
            labels,
            header=court,
            title="行政判决书",
        )

    def corpus(self, per_kind: int) -> list[Document]:
        documents: list[Document] = []
        for index in range(per_kind):
            documents += [
                self.criminal(index),
                self.criminal(index + 1000, minor=True),
                self.civil(index),
                self.divorce(index),
                self.mediation(index),
                self.administrative(index),
            ]
        return documents


def clean_twin(document: Document) -> Document:
    """The same judgment as it should be published: names hidden, identifiers removed."""
    from agent.detectors.documents.checker.names import pseudonym_base

    replacements: dict[str, str] = {}
    bases: dict[str, int] = {}
    for label in document.labels:
        if label.value is None:
            continue
        if label.rule_id in ("documents.party-name", "documents.protected-person-name"):
            base = pseudonym_base(label.value)
            bases[base] = bases.get(base, 0) + 1
            replacements[label.value] = f"{base}{bases[base]}" if bases[base] > 1 else base
        elif label.rule_id == "documents.address":
            replacements[label.value] = "××"
        elif label.rule_id == "documents.licence-plate":
            replacements[label.value] = label.value[:2] + "×××××"
        else:
            replacements[label.value] = "×××"

    def scrub(text: str) -> str:
        for value in sorted(replacements, key=len, reverse=True):
            text = text.replace(value, replacements[value])
        return text

    return Document(
        kind=document.kind,
        name=document.name + "-clean",
        body=[scrub(line) for line in document.body],
        labels=[label for label in document.labels if label.value is None],
        header=scrub(document.header),
        table=[[scrub(c) for c in row] for row in document.table],
        comment=scrub(document.comment),
        title=scrub(document.title),
        clean=True,
    )


FORMATS = (".txt", ".docx", ".pdf", ".ofd")


def render(document: Document, directory: Path, suffix: str) -> Path:
    path = directory / f"{document.name}{suffix}"
    if suffix == ".txt":
        path.write_bytes(document.text().encode("gb18030"))
    elif suffix == ".docx":
        write_docx(
            path,
            DocxContent(
                document.body,
                table=document.table,
                header=document.header,
                footer="第 1 页",
                comment=document.comment,
                title=document.title,
                author="书记员",
            ),
        )
    elif suffix == ".pdf":
        write_pdf(path, document.body, title=document.title)
    elif suffix == ".ofd":
        half = len(document.body) // 2
        write_ofd(path, [document.body[:half], document.body[half:]], title=document.title)
    else:
        raise ValueError(suffix)
    return path


@dataclass
class RuleScore:
    tp: int = 0
    fn: int = 0
    fp: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class Evaluation:
    rules: dict[str, RuleScore] = field(default_factory=dict)
    documents: int = 0
    clean_documents: int = 0
    clean_false_findings: int = 0
    block_expected: int = 0
    block_found: int = 0
    errors: list[str] = field(default_factory=list)
    misses: list[tuple[str, str, str]] = field(default_factory=list)
    false: list[tuple[str, str, str]] = field(default_factory=list)

    def score(self, rule_id: str) -> RuleScore:
        return self.rules.setdefault(rule_id, RuleScore())

    def recall_of(self, rule_ids: set[str]) -> float:
        tp = sum(self.score(r).tp for r in rule_ids)
        fn = sum(self.score(r).fn for r in rule_ids)
        return tp / (tp + fn) if tp + fn else 1.0


#: A name is caught when any name rule pseudonymises it: which one depends on the
#: person's age on the day of the scan (a minor is an article 8 person) and the profile.
NAME_RULES = frozenset(
    {"documents.party-name", "documents.protected-person-name", "documents.hidden-name-leak"}
)


def _same_rule(found: str, labelled: str) -> bool:
    return found == labelled or (found in NAME_RULES and labelled in NAME_RULES)


def _norm(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", text).replace(" ", "")


def evaluate(
    documents: list[Document], paths: list[Path], policy: object, profile: str
) -> Evaluation:
    """Scan each rendered file in-process and score its findings against the labels."""
    from agent.detectors.documents.checker.extract import ExtractionError, extract_file
    from agent.detectors.documents.checker.scanner import scan_parts

    result = Evaluation()
    for document, path in zip(documents, paths, strict=True):
        result.documents += 1
        try:
            parts = extract_file(path).parts
        except ExtractionError as exc:
            result.errors.append(f"{path.name}: {exc}")
            continue
        scan = scan_parts(parts, policy, profile)  # type: ignore[arg-type]  # policy is passed as object
        texts = {p.name: p.text for p in parts}
        covered = [(f.rule_id, _norm(texts[f.part][f.start : f.end])) for f in scan.findings]
        if document.clean:
            result.clean_documents += 1
        doc_rules = {label.rule_id for label in document.labels if label.value is None}
        if doc_rules & BLOCK_RULES:
            result.block_expected += 1
            result.block_found += scan.verdict == "do_not_publish"
        for label in document.labels:
            score = result.score(label.rule_id)
            if label.value is None:
                hit = any(rule == label.rule_id for rule, _ in covered)
            else:
                value = _norm(label.value)
                hit = any(
                    _same_rule(rule, label.rule_id) and text and (text in value or value in text)
                    for rule, text in covered
                )
            if hit:
                score.tp += 1
            else:
                score.fn += 1
                result.misses.append((path.name, label.rule_id, label.value or ""))
        for rule, text in covered:
            matched = any(
                _same_rule(rule, label.rule_id)
                and (
                    label.value is None
                    or (text and (text in _norm(label.value) or _norm(label.value) in text))
                )
                for label in document.labels
            )
            if not matched:
                result.score(rule).fp += 1
                result.false.append((path.name, rule, text))
                if document.clean:
                    result.clean_false_findings += 1
    return result
