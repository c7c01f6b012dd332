# ruff: noqa: E501  (a table of prose: one rule per entry reads better than wrapped fragments)
"""What each shipped rule means, in Chinese, for the alert page.

The policies describe their rules in English (``desc``): the policy format is
shared with the agents, whose models refuse unknown fields, so a Chinese field
there would break older agents. The console shows these texts for the rule ids
the project ships and the policy's own English text for any other rule, saying so.
``tests/collector/console/test_rule_texts.py`` checks that every shipped rule has one.
"""

from __future__ import annotations

from typing import Final

RULE_ZH: Final[dict[str, str]] = {
    # accounts
    "accounts.session": "非告警：记录外包人员每次会话的开始与结束（logind、utmp 或 PAM 日志），"
                        "收集端据此跨主机关联（账号共用、首次登录主机）。停用它会使这两条规则失效。",
    "accounts.login-outside-hours": "外包人员在岗位规定时间（含宽限）之外登录，或在非调休上班的周末登录。"
                                    "可调整岗位时间或宽限；经批准的加班请添加带有效期的例外 [账号, 主机]。",
    "accounts.login-on-holiday": "外包人员在法定节假日登录（依据节假日库及策略中的日历覆盖）。"
                                 "经批准的节假日值班请添加带有效期的例外。",
    "accounts.login-unassigned-host": "外包人员在未分配给其岗位的主机上登录（岗位主机清单）。"
                                      "工位调整后请及时更新岗位主机清单。",
    "accounts.login-outside-contract": "外包人员在合同开始前或结束后登录，或 PAM 因账号过期拒绝登录。"
                                       "续签合同时请延长岗位合同日期，否则应删除该账号。",
    "accounts.login-disabled-account": "策略中已标记停用（人员已离场）的账号登录。请在主机上锁定该账号。",
    "accounts.forbidden-group": "外包账号属于禁止的（特权）用户组（按 NSS 解析，含本地文件与目录服务），"
                                "在启动时、/etc/group 变化时及定时检查；仅在组集合变化时再次上报。",
    "accounts.privilege-used": "外包人员成功执行了 sudo、su 或 pkexec。外包人员不应持有常设特权；"
                               "双人控制的管理工作请添加带有效期的例外 [账号, 主机]。",
    "accounts.privilege-attempt": "外包人员尝试 sudo、su 或 pkexec 被拒绝（不在 sudoers、密码错误或未授权）。"
                                  "每次尝试都会上报：外包人员没有理由尝试提权。",
    "accounts.account-changed": "外包人员创建、修改了账号，或将账号加入、移出用户组（useradd、usermod、gpasswd）。"
                                "变更窗口内的开通操作请添加带有效期的例外 [目标, 组]。",
    "accounts.password-reset-other": "外包人员修改了他人的密码（sudo passwd、chpasswd、usermod -p）。"
                                     "受托承担重置工作的服务台人员请添加带有效期的例外。",
    "accounts.forbidden-program": "外包人员启动了禁止的程序（远程控制工具、嗅探器、扫描器等，按进程名、"
                                  "可执行文件和 argv[0] 匹配）。经批准的支持工具请添加例外 [账号, 名称]。",
    "accounts.removable-mount": "外包人员登录期间（或以其名义）挂载了移动存储。已批准的设备也按此级别上报；"
                                "未批准的设备还会触发“未批准设备”规则。",
    "accounts.unapproved-device": "外包人员会话期间挂载的移动设备不在岗位批准设备清单（厂商:产品:序列号）中。"
                                  "设备登记后请将其加入岗位清单。",
    "accounts.protected-path": "外包人员访问了受保护路径。平台无法判断具体是谁时（inotify），"
                               "事件列出当时登录的外包人员作为候选并注明。",
    "accounts.failed-login-burst": "同一外包账号在时间窗口内登录失败次数达到阈值（sshd、login、图形登录）。"
                                   "脚本使用过期口令较多时可提高阈值，并修复脚本。",
    "accounts.burst-then-success": "外包账号在连续登录失败后的时间窗口内登录成功：口令很可能被猜中。"
                                   "请重置密码并核查来源。",
    "accounts.persistence": "外包人员设置了持久化：修改 crontab、systemd 用户单元、桌面自启动项或 authorized_keys。"
                            "配置管理账号请添加例外 [账号, 路径]。",
    "accounts.tamper": "痕迹被篡改：认证日志被截断、命令历史被清除、代理被停止或其文件被修改。"
                       "日志轮转不会上报，原地截断会上报。",
    "accounts.shared-account": "同一外包账号同时在两台及以上主机上保持会话达到设定时长：账号很可能被共用"
                               "（违背“谁使用、谁负责”）。死机主机的残留会话最多计 12 小时。",
    "accounts.first-seen-host": "外包账号首次在某台主机上登录。单独看风险较低，但会提高该账号的当日评分。",
    "accounts.first-sudo": "外包账号首次在某台主机上使用或尝试 sudo、su、pkexec。单独看风险较低，"
                           "但会提高当日评分。",
    "accounts.daily-score": "同一外包人员在一个北京时间自然日内出现多项小异常，按规则加权求和达到评分阈值。"
                            "可调整权重和阈值；事件列出每一项的贡献。",
    # agent
    "agent.silent": "已注册的代理连续若干个心跳周期未发送心跳。经常休眠的笔记本可调高允许缺失的次数；"
                    "重点时期切勿停用，失联的终端可能已被断开管控。",
    "agent.spool-dropped": "代理的本地缓存达到容量上限，丢弃了最不严重、最早的事件。"
                           "经常长时间离线的主机请在 agent.toml 中调大 spool_max_bytes。",
    "agent.detector-degraded": "某个检测器无法完整工作（缺少权限、内核功能或反复失败）。"
                               "请修复主机或服务单元的权限；事件注明缺少的内容。",
    "agent.policy-applied": "代理已验证签名策略包并开始使用。仅作记录：管理台据此统计各版本的代理数量。",
    "agent.policy-rejected": "代理拒绝了策略包（签名错误、版本较旧、分组不符或内容无效），继续使用上一版有效策略。"
                             "签名错误可能是攻击：请先检查收集端和网络路径。",
    "agent.calendar-expiring": "代理判断工作时间所用的节假日日历将在 60 天内到期。"
                               "请在携带日历的策略（accounts.yaml）中补充下一年度国务院办公厅放假通知。",
    "agent.calendar-expired": "节假日日历已到期：节假日和调休上班日不再可知，节假日登录会被当作工作时间，"
                              "调休的周六会被当作周末。请补充当年的国务院办公厅放假通知。",
    # documents
    "documents.minor-defendant": "被告人犯罪时未满十八周岁的刑事裁判文书（按出生日期与犯罪日期或常见表述判断），"
                                 "不在互联网公布。",
    "documents.mediation": "民事调解书及确认人民调解协议效力的裁定不在互联网公布；"
                           "行政调解和公益诉讼民事调解除外（第三条）。",
    "documents.family-cause": "离婚诉讼及涉及未成年子女抚养、监护的案件文书不在互联网公布。",
    "documents.family-related-cause": "离婚后财产、探望权、同居关系纠纷的文书须经人工审查涉及家庭隐私的内容后方可公布。",
    "documents.state-secret": "出现提示国家秘密的表述：文书暂不公布，直到人工确认不含国家秘密"
                              "（如“非法获取国家秘密罪”等罪名也会触发）。",
    "documents.non-public-hearing": "不公开审理的案件（涉及隐私、未成年人）：由人工决定判决书能否上网。",
    "documents.hidden-name-leak": "某人在一处已隐名为“张某”，却在文书其他部分（表格、页眉、批注、修订删除内容、"
                                  "文件名或文档属性）出现全名。",
    "documents.protected-person-name": "第八条在各规范下均须隐名的人员（被害人、证人、鉴定人、附带民事诉讼原告人、"
                                       "未成年人及其法定代理人，以及婚姻家庭、继承纠纷的全部当事人）在文书中出现全名。",
    "documents.party-name": "2024 年隐名规范：所有自然人当事人及非律师代理人应以“姓＋某”表示。",
    "documents.company-trade-name": "2024 年隐名规范：单位当事人仅保留地域、行业和组织形式（如“上海某科技有限公司”），"
                                    "隐去字号。",
    "documents.pseudonym-collision": "两个不同的人都被隐名为“张某”，未按第九条加数字区分。",
    "documents.resident-id": "18 位居民身份证号码（含港澳台居民居住证和 2023 版外国人永久居留身份证）："
                             "校验码、出生日期和省份代码均有效；“身份证”旁校验失败的号码转人工审核。",
    "documents.legacy-id": "15 位第一代身份证号码，仅在身份证相关表述旁识别（其他场合 15 位数字很常见）。",
    "documents.residence-permit": "旧版外国人永久居留证号码（3 个字母＋12 位数字），在居留证相关表述旁识别。",
    "documents.travel-document": "护照、港澳台居民来往内地通行证、港澳台身份证号码，仅在其名称旁识别"
                                 "（短编号易与型号混淆）。",
    "documents.mobile-phone": "手机号码（可带 +86，按工信部号段），不含发票号、海关编号。",
    "documents.landline-phone": "带区号的固定电话号码；400/800 号码（通常属于单位）转人工审核。",
    "documents.bank-account": "银行卡号（16–19 位，发卡行前缀，Luhn 校验），以及账户表述旁的任何账号；"
                              "身份证号和海关编号不视为账号。",
    "documents.licence-plate": "机动车号牌，含 8 位新能源号牌；已遮蔽的号牌（京A×××××）不报告。",
    "documents.property-certificate": "不动产权证书号（如京(2020)朝阳区不动产权第0012345号、房权证、国用、房号），"
                                      "以及其名称旁的动产权属证书号。",
    "documents.vehicle-identifier": "车辆识别代号（ISO 3779 校验位）、发动机号和 IMEI（在其名称旁）："
                                    "第十条虽未列举，但可识别个人。",
    "documents.email": "电子邮箱地址。",
    "documents.messaging-account": "QQ、微信、支付宝账号，仅在其名称之后识别（单独的 5–11 位数字证据不足）。",
    "documents.individual-business-code": "以 92 开头的统一社会信用代码（个体工商户）可识别自然人。",
    "documents.organisation-code": "2024 年隐名规范：单位的统一社会信用代码（GB 32100）和组织机构代码（GB 11714）"
                                   "可识别已隐去字号的当事人；律师事务所执业许可证号保留。",
    "documents.address": "自然人住址中县级以下的详细地址（“住”“住址”“户籍地”之后）；"
                         "已遮蔽的地址和单位住所地不报告。",
    "documents.health": "健康信息（诊断、病历号）；伤残等级保留，是否需要诊断内容以理解案情由人工决定。",
    "documents.technical-investigation": "技术侦查措施（监听、技侦、特情、控制下交付）。",
    "documents.private-matters": "婚姻家庭和人格权纠纷中的个人隐私（婚外情、性相关内容）。",
    "documents.trade-secret": "商业秘密相关表述（配方、源代码、客户名单）：由人工确认未予披露。",
    # outreach
    "outreach.probe-reached": "外联探测经本机某个网络接口到达互联网侧应答端，且应答带有应答端的 HMAC："
                              "本机已越出内网边界。切勿通过调整规则消除，应整改主机。",
    "outreach.interface-unapproved": "未在批准清单中的网络接口启用（USB 无线网卡、4G/5G 上网卡、手机共享网络、"
                                     "蓝牙 PAN、PPP、USB 网卡）。经批准的适配器可按名称模式、MAC 或 USB 标识加入清单。",
    "outreach.wifi-associated": "在不允许无线的设置下，无线接口连接了某个网络。仅在批准使用无线的场所开启无线许可。",
    "outreach.route-outside": "内核会把公网探测地址经未批准的接口或网关发出（第二条默认路由，或 0/1 与 128/1 拆分路由）。"
                              "如该路径经过批准，请批准该接口或网关。",
    "outreach.address-outside": "某接口持有内网地址清单之外的地址（含 IPv6 全球地址）。如该地址段属于本单位，请加入内网清单。",
    "outreach.flow-outside": "出现访问内网地址清单之外目的地的新连接（TCP、UDP、ICMP；IPv4 或 IPv6）。"
                             "如目的地属于本单位请加入清单；针对单个程序和端口可添加例外。",
    "outreach.dns-resolver-outside": "DNS 查询发往不在解析服务器清单中的服务器。请列出内网解析服务器；"
                                     "未列出时，DNS 按普通外联连接判断。",
    "outreach.dns-answer-outside": "内网 DNS 区域中的域名被解析为内网清单之外的地址（解析被劫持或使用了外部解析服务器）。"
                                   "请修复解析路径。",
    "outreach.proxy-outside": "代理设置（环境变量文件、apt、桌面设置）指向内网之外。指向内网清单中地址或内网区域域名的代理不报告。",
    "outreach.sharing": "本机转发数据包、做地址伪装或开启热点：可能为其他设备提供外联通道。"
                        "经批准的路由器不是终端，仅对这些主机停用本规则。",
}
