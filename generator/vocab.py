"""Words the synthetic library speaks: colleges and their CLC classes, names, queries,
publishers and the e-resource platforms. Plain tuples, so every draw is by index. The codes
the landing files carry are the ones their staging contracts allow, in the contracts' order."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.model import contract_for


@dataclass(frozen=True)
class Discipline:
    college: str
    departments: tuple[str, ...]
    clc: tuple[str, ...]          # 中图法 classes its readers borrow in
    topics_zh: tuple[str, ...]
    topics_en: tuple[str, ...]
    lc: str                        # an LC class stem for its English books
    dewey: str                     # a Dewey stem


DISCIPLINES: tuple[Discipline, ...] = (
    Discipline("信息管理学院", ("图书馆学系", "信息管理系", "档案学系"),
               ("G250.7", "G252", "G254.36", "G258.6", "G270", "TP391.3"),
               ("图书馆学", "信息检索", "数据治理", "档案管理", "知识组织", "元数据"),
               ("Library Science", "Information Retrieval", "Data Governance", "Metadata"), "Z665", "025.04"),
    Discipline("计算机学院", ("计算机科学系", "软件工程系", "人工智能系"),
               ("TP311.13", "TP312", "TP18", "TP391.41", "TP393", "TN929.5"),
               ("数据库系统", "机器学习", "软件工程", "计算机网络", "深度学习", "操作系统"),
               ("Database Systems", "Machine Learning", "Software Engineering", "Computer Networks"), "QA76.9.D3", "005.74"),
    Discipline("文学院", ("中国语言文学系", "古典文献学系"),
               ("I207.22", "I247.5", "I206.2", "H109.4", "I222.7"),
               ("中国古代文学", "现代小说", "唐诗", "文学批评", "汉语史", "红楼梦"),
               ("Chinese Literature", "Modern Fiction", "Literary Criticism"), "PL2658", "895.1"),
    Discipline("历史学院", ("历史学系", "考古学系"),
               ("K207", "K825.6", "K871", "K10", "K248"),
               ("中国通史", "考古学", "明清史", "世界史", "史学理论"),
               ("Chinese History", "Archaeology", "World History"), "DS735", "951"),
    Discipline("哲学学院", ("哲学系", "宗教学系"),
               ("B222", "B516", "B82", "A81", "B94"),
               ("儒家思想", "西方哲学", "伦理学", "逻辑学", "宗教研究"),
               ("Philosophy", "Ethics", "Logic"), "B126", "181.11"),
    Discipline("经济与管理学院", ("经济学系", "金融学系", "管理科学系"),
               ("F830.9", "F272", "F224.0", "F014", "C93", "F123"),
               ("金融学", "管理学原理", "计量经济学", "市场营销", "会计学", "宏观经济"),
               ("Finance", "Management", "Econometrics", "Marketing"), "HG173", "332"),
    Discipline("法学院", ("法学系", "国际法系"),
               ("D923", "D915", "D90", "D99", "D622"),
               ("民法", "刑法学", "国际法", "法理学", "行政法"),
               ("Civil Law", "International Law", "Jurisprudence"), "KNQ", "340"),
    Discipline("数学与统计学院", ("数学系", "统计学系"),
               ("O13", "O211", "O212", "O174", "O15", "C81"),
               ("高等数学", "概率论", "数理统计", "线性代数", "数学分析"),
               ("Calculus", "Probability", "Statistics", "Linear Algebra"), "QA276", "519.5"),
    Discipline("物理科学与技术学院", ("物理学系", "微电子学系"),
               ("O4", "O41", "O48", "O56", "TN4"),
               ("量子力学", "固体物理", "光学", "电动力学", "半导体器件"),
               ("Quantum Mechanics", "Optics", "Solid State Physics"), "QC174", "530.12"),
    Discipline("化学与分子科学学院", ("化学系", "化学工程系"),
               ("O6", "O62", "O64", "TQ0", "O65"),
               ("有机化学", "物理化学", "分析化学", "化学工程", "高分子"),
               ("Organic Chemistry", "Physical Chemistry", "Analytical Chemistry"), "QD251", "547"),
    Discipline("生命科学学院", ("生物学系", "生态学系"),
               ("Q78", "Q5", "Q14", "Q2", "S5"),
               ("分子生物学", "生物化学", "生态学", "细胞生物学", "遗传学"),
               ("Molecular Biology", "Ecology", "Genetics"), "QH506", "572.8"),
    Discipline("医学部", ("基础医学院", "临床医学院", "药学院", "公共卫生学院"),
               ("R73", "R5", "R96", "R181", "R4", "R9"),
               ("内科学", "肿瘤学", "药理学", "流行病学", "临床诊断", "病理学"),
               ("Internal Medicine", "Oncology", "Pharmacology", "Epidemiology"), "RC254", "616.99"),
    Discipline("土木建筑工程学院", ("土木工程系", "建筑学系"),
               ("TU3", "TU2", "TU7", "U4", "TU98"),
               ("结构力学", "建筑设计", "工程施工", "桥梁工程", "城市规划"),
               ("Structural Engineering", "Architecture", "Urban Planning"), "TA645", "624.1"),
    Discipline("电气与自动化学院", ("电气工程系", "自动化系"),
               ("TM7", "TM3", "TP27", "TP13", "TN91"),
               ("电力系统", "电机学", "自动控制", "信号处理", "通信原理"),
               ("Power Systems", "Control Theory", "Signal Processing"), "TK1001", "621.31"),
    Discipline("外国语言文学学院", ("英语系", "日语系", "法语系"),
               ("H319.4", "H31", "H36", "I561", "I712"),
               ("英语写作", "翻译理论", "英国文学", "日语语法", "语言学"),
               ("English Writing", "Translation Studies", "Linguistics"), "PE1408", "808.042"),
    Discipline("新闻与传播学院", ("新闻学系", "广播电视系"),
               ("G210", "G206", "G21", "G22", "G219.2"),
               ("新闻学", "传播学", "新媒体", "广告学"),
               ("Journalism", "Media Studies", "Communication"), "PN4775", "070.4"),
    Discipline("资源与环境科学学院", ("环境科学系", "地理信息系"),
               ("X171", "X5", "P208", "P343", "X32"),
               ("环境科学", "地理信息系统", "水文学", "遥感", "气候变化"),
               ("Environmental Science", "GIS", "Hydrology", "Remote Sensing"), "GE105", "363.7"),
    Discipline("艺术学院", ("美术系", "音乐系", "设计系"),
               ("J222", "J6", "J50", "J21", "J9"),
               ("中国画", "音乐理论", "设计基础", "艺术史", "电影"),
               ("Art History", "Music Theory", "Design"), "N5300", "709"),
)

# Titles in classes no college owns, borrowed by anyone (the general collection).
GENERAL_CLC = ("Z228", "N49", "E0", "V2", "U2", "Z88", "A12", "D61", "K92", "G64")
GENERAL_TOPICS_ZH = ("百科知识", "科普读物", "军事理论", "航空航天", "交通运输", "地理", "大学生就业", "中国共产党历史")
GENERAL_TOPICS_EN = ("General Science", "Military Theory", "Aviation", "Transport")

TITLE_FORMS_ZH = ("{}导论", "{}概论", "{}教程", "{}研究", "{}原理", "{}实践", "{}史", "{}新论", "{}方法", "{}手册")
SUBTITLES_ZH = ("理论与实践", "第2版", "第3版", "案例分析", "", "", "", "")
TITLE_FORMS_EN = ("Introduction to {}", "{}: A Handbook", "Principles of {}", "Advances in {}", "{} in Practice",
                  "Foundations of {}")
SUBTITLES_EN = ("theory and practice", "second edition", "a critical introduction", "", "", "")

PUBLISHERS_ZH = (("北京", "清华大学出版社"), ("北京", "高等教育出版社"), ("北京", "北京大学出版社"), ("上海", "上海人民出版社"),
                 ("北京", "人民邮电出版社"), ("北京", "科学出版社"), ("武汉", "武汉大学出版社"), ("北京", "商务印书馆"),
                 ("北京", "中华书局"), ("北京", "人民卫生出版社"), ("北京", "机械工业出版社"))
PUBLISHERS_EN = (("Cambridge", "Cambridge University Press"), ("Oxford", "Oxford University Press"), ("Cham", "Springer"),
                 ("Hoboken", "Wiley"), ("New York", "Routledge"), ("Amsterdam", "Elsevier"))

SURNAMES = (("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"), ("赵", "zhao"),
            ("黄", "huang"), ("周", "zhou"), ("吴", "wu"), ("徐", "xu"), ("孙", "sun"), ("胡", "hu"), ("朱", "zhu"),
            ("高", "gao"), ("林", "lin"), ("何", "he"), ("郭", "guo"), ("马", "ma"), ("罗", "luo"), ("梁", "liang"),
            ("宋", "song"), ("郑", "zheng"), ("谢", "xie"), ("韩", "han"), ("唐", "tang"), ("冯", "feng"), ("欧阳", "ouyang"),
            ("司马", "sima"), ("诸葛", "zhuge"))
# Weights: the common surnames are very common.
SURNAME_WEIGHTS = (7.4, 7.2, 7.1, 5.4, 4.5, 3.1, 2.3, 2.2, 2.1, 2.0, 1.7, 1.5, 1.3, 1.2, 1.2, 1.1, 1.1, 1.1, 1.0, 0.9,
                   0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.6, 0.1, 0.05, 0.02)
GIVEN_CHARS = (("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("强", "qiang"),
               ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"),
               ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"),
               ("小", "xiao"), ("晓", "xiao"), ("婷", "ting"), ("宇", "yu"), ("浩", "hao"), ("欣", "xin"), ("怡", "yi"),
               ("子", "zi"), ("涵", "han"), ("博", "bo"), ("文", "wen"), ("睿", "rui"), ("思", "si"), ("琪", "qi"), ("鑫", "xin"))

AUTHORS_EN = ("Smith, John", "Brown, Emily", "Garcia, Maria", "Müller, Hans", "Tanaka, Yuki", "Dubois, Claire",
              "Johnson, Robert", "Lee, Min-jun", "Rossi, Marco", "Novak, Petra", "Kumar, Anil", "Silva, Ana")

QUERY_ZH = ("图书馆", "数据治理", "机器学习", "中国古代文学", "红楼梦", "量子力学", "金融风险", "民法典", "深度学习",
            "唐诗宋词", "高等数学", "有机化学", "肿瘤", "流行病学", "城市规划", "碳中和", "大数据", "人工智能", "考研",
            "英语四级", "论文写作", "统计学", "经济学原理", "心理学", "哲学", "史记", "鲁迅", "算法导论", "Python编程",
            "信息检索", "档案学", "新闻传播", "建筑设计", "电路分析", "遥感", "生态学", "药理学", "马克思主义")
QUERY_EN = ("data governance", "machine learning", "deep learning", "quantum", "climate change", "metadata", "statistics",
            "linear algebra", "organic chemistry", "epidemiology", "public health", "econometrics", "Shakespeare",
            "information retrieval", "python", "database systems", "urban planning", "oncology", "translation",
            "nature", "library science", "COVID-19", "blockchain", "neural networks")
# Queries nobody's catalogue matches: the zero-hit searches.
QUERY_MISS = ("asdfgh", "tushuguan", "红楼孟", "machin lerning", "qwerty", "数剧治理", "isbn 978-7-302-00000-0")

CATEGORIES = contract_for("staging.patron").allowed_values("category_code")
CATEGORY_SHARES = (0.52, 0.22, 0.08, 0.14, 0.03, 0.01)   # UG, PG, STAFF, ALUMNI, PUBLIC, ORG
# Koha statistics types, drawn as 0 issue, 1 return, 2 renew, 3 local use.
CIRC_TYPES = contract_for("staging.circulation_event").allowed_values("event_type")
SEARCH_TYPES = contract_for("staging.search").allowed_values("search_type")     # 0 biblio, 1 authority
GATE_DIRECTIONS = contract_for("staging.gate_event").allowed_values("direction")   # 0 IN, 1 OUT
GATE_RESULTS = contract_for("staging.gate_event").allowed_values("result")         # 0 PASS, 1 DENY
# A planted trend for the diagnostic marts: from the second month of a generated range on,
# this share of the loans of the 经济与管理学院 titles (CLC F, a class of its own) is read as
# e-books instead, and COUNTER requests for the discipline's e-books grow by as much, so its
# print borrowing falls beside rising e-book use.
EBOOK_SHIFT_DISCIPLINE = 5
EBOOK_SHIFT = 0.45

CONSENT = ("Y", "N", "")
CONSENT_SHARES = (0.55, 0.15, 0.30)

STATIC_ASSETS = ("static/css/main.css", "static/js/app.min.js", "static/img/logo.png", "static/img/spinner.gif",
                 "static/css/print.css", "static/js/vendor.js", "favicon.png")


@dataclass(frozen=True)
class Platform:
    name: str
    host: str
    publisher: str
    publisher_isni: str
    chinese: bool
    weight: float          # share of EZproxy traffic
    databases: tuple[str, ...]
    # URL pieces: article = pre + journal + mid + number + post
    article: tuple[str, str, str]
    pdf: tuple[str, str, str]
    search: str


PLATFORMS: tuple[Platform, ...] = (
    Platform("ScienceDirect", "www.sciencedirect.com", "Elsevier", "0000000404624851", False, 0.22,
             ("ScienceDirect Journals", "ScienceDirect eBooks"),
             ("/science/article/pii/S", "25", ""), ("/science/article/pii/S", "25", "/pdfft?download=true"),
             "/search?qs="),
    Platform("SpringerLink", "link.springer.com", "Springer Nature", "0000000092347578", False, 0.14,
             ("SpringerLink Journals", "Springer eBooks"),
             ("/article/10.1007/s", "-025-", ""), ("/content/pdf/10.1007/s", "-025-", ".pdf"), "/search?query="),
    Platform("Wiley Online Library", "onlinelibrary.wiley.com", "John Wiley & Sons", "0000000121581234", False, 0.10,
             ("Wiley Online Library Journals",),
             ("/doi/10.1002/", ".", ""), ("/doi/pdf/10.1002/", ".", ""), "/action/doSearch?AllField="),
    Platform("CNKI", "kns.cnki.net", "同方知网", "0000000458961111", True, 0.34,
             ("中国学术期刊网络出版总库", "中国博士学位论文全文数据库", "中国优秀硕士学位论文全文数据库"),
             ("/kcms2/article/abstract?dbcode=CJFD&filename=", "2025", ""),
             ("/kcms2/article/download?dbcode=CJFD&filename=", "2025", ""), "/kns8s/defaultresult/index?kw="),
    Platform("Wanfang Data", "www.wanfangdata.com.cn", "万方数据", "0000000467812222", True, 0.20,
             ("中国学术期刊数据库", "中国学位论文全文数据库"),
             ("/periodical/article/", "2025", ""), ("/periodical/download/", "2025", ".pdf"),
             "/search/searchList.do?searchWord="),
)
