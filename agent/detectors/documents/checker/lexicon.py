"""Word lists the scanner reads: roles, surnames, administrative and lexical markers.

Kept as code rather than policy because they describe the language of
judgments, not a court's choices; policy rules extend them through ``terms``.
"""

from __future__ import annotations

from typing import Final

#: Compound surnames first: a name starting with one keeps both characters (欧阳某).
COMPOUND_SURNAMES: Final = tuple(
    [
        "欧阳",
        "司马",
        "诸葛",
        "上官",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "令狐",
        "宇文",
        "长孙",
        "夏侯",
        "轩辕",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "百里",
        "呼延",
        "司徒",
        "司空",
        "单于",
        "澹台",
        "公冶",
        "太史",
        "申屠",
        "钟离",
        "闻人",
        "万俟",
        "赫连",
        "东郭",
        "左丘",
        "鲜于",
        "贺兰",
        "拓跋",
        "第五",
        "乐正",
        "羊舌",
        "微生",
        "梁丘",
        "东门",
        "南门",
        "壤驷",
        "巫马",
        "公良",
        "漆雕",
        "宰父",
        "谷梁",
        "段干",
        "公羊",
        "公西",
        "仲孙",
        "叔孙",
        "濮阳",
        "淳于",
        "太叔",
        "颛孙",
        "司寇",
        "亓官",
    ]
)
#: Common single-character surnames (the 《百家姓》 core plus the most frequent modern ones).
SURNAMES: Final = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞"
    "左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕"
    "屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
    "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥"
    "南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支"
    "卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印"
    "逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"
    # The rest of the GB/T surname table in common use (傅, 洪, 赖, 赛 and the rarer ones).
    "傅洪赖赛萧阎郗荀酆鄂禄綦寿缑暴斛仉庹谯郦俸旷宓糜隗贝汝蓟韶郇眭逄笪佴乜钭蹇巢濮宦汲"
    "邗璩桓堵蒯暨竺习宰贡鄞丘佼酉"
)
#: Characters that end a given name found after a role word (verbs, particles, punctuation).
NAME_STOP: Final = frozenset(
    "的证陈称供在于与和及向系是为因将对等说被所已经并同亦也曾均即又再不未无有之其等人"
    "驾报到来去回拿用给把从自至出住以作提交签书诉讼代理"
    "犯持伙携抢窃骗踢砍捅遂便仍却"
)
#: Characters that cannot even start a given name: particles right after a surname-like word.
NAME_START_STOP: Final = frozenset("的在于与和及等称证陈说是系向将对被所已并也均即又不未之其按")

#: Roles whose people appear in party lines at the head of a judgment, longest first.
PARTY_ROLES: Final = tuple(
    sorted(
        [
            "原告",
            "被告",
            "被告人",
            "上诉人",
            "被上诉人",
            "原审原告",
            "原审被告",
            "原审第三人",
            "第三人",
            "申请人",
            "被申请人",
            "再审申请人",
            "申请执行人",
            "被执行人",
            "申诉人",
            "被申诉人",
            "罪犯",
            "复议申请人",
            "异议人",
            "案外人",
            "附带民事诉讼原告人",
            "附带民事诉讼被告人",
            "起诉人",
            "反诉原告",
            "反诉被告",
            "原审被告人",
            "原审上诉人",
            "一审原告",
            "一审被告",
            "二审上诉人",
            "二审被上诉人",
            "再审被申请人",
            "被申请执行人",
            "自诉人",
            "当事人",
        ],
        key=len,
        reverse=True,
    )
)
#: Roles that stand for someone else; hidden when the person they represent is.
REPRESENTATIVE_ROLES: Final = (
    "法定代理人",
    "委托诉讼代理人",
    "委托代理人",
    "指定代理人",
    "诉讼代表人",
    "法定代表人",
    "负责人",
    "辩护人",
)
#: Organisation name endings: a party whose name ends so is not a natural person.
ORGANISATION_ENDINGS: Final = (
    "公司",
    "厂",
    "店",
    "中心",
    "银行",
    "合作社",
    "事务所",
    "委员会",
    "局",
    "院",
    "所",
    "学校",
    "医院",
    "集团",
    "协会",
    "商行",
    "超市",
    "酒店",
    "部",
    "站",
    "馆",
    "社",
    "场",
    "行",
    "处",
    "政府",
    "办事处",
    "检察院",
    "法院",
    "村民委员会",
    "居民委员会",
    "工作室",
    "经营部",
)
#: People whose names are published (SPC 2026-01-07: hiding them is improper).
KEEP_ROLES: Final = (
    "审判长",
    "审判员",
    "代理审判员",
    "人民陪审员",
    "陪审员",
    "法官助理",
    "书记员",
    "执行员",
    "检察员",
    "代理检察员",
    "检察官",
    "检察官助理",
)
#: Case types whose parties art. 8(1) hides in every profile (婚姻家庭、继承).
FAMILY_CAUSE_WORDS: Final = (
    "离婚",
    "婚约",
    "夫妻",
    "同居",
    "抚养",
    "扶养",
    "赡养",
    "收养",
    "监护",
    "探望",
    "分家析产",
    "继承",
    "遗嘱",
    "遗赠",
    "亲子",
    "婚姻",
)
#: Causes that put a personality-right or family dispute's private life under review.
PRIVATE_LIFE_CAUSE_WORDS: Final = (
    *FAMILY_CAUSE_WORDS,
    "名誉权",
    "隐私权",
    "肖像权",
    "人格权",
    "一般人格权",
    "个人信息",
)
#: Town-level address markers: what follows the county in an address.
TOWN_MARKERS: Final = (
    "镇",
    "乡",
    "街道",
    "村",
    "社区",
    "路",
    "街",
    "巷",
    "号",
    "弄",
    "小区",
    "花园",
    "苑",
    "栋",
    "幢",
    "单元",
    "室",
    "楼",
    "组",
    "屯",
    "大道",
    "胡同",
    "公寓",
    "宿舍",
    "家园",
    "新村",
)
#: Words before a number that make it a document or customs number, not a phone or account.
NOT_PERSONAL_NUMBER_CONTEXT: Final = (
    "发票",
    "报关单",
    "单号",
    "订单",
    "编号",
    "流水号",
    "合同号",
    "批次",
    "运单",
    "执业证",
    "案号",
    "凭证号",
    "批号",
    "登记号",
    "备案号",
    "许可证",
)
