"""Two languages for the dashboard: English and Simplified Chinese (zh-CN).

The choice comes from ``?lang=`` (kept in the session), else the browser's
``Accept-Language``, else ``DASHBOARD_DEFAULT_LANG``. Messages are keyed by their English text,
so a missing translation shows English rather than a key.
"""

from __future__ import annotations

from flask import current_app, g, request, session

LANGS = ("en", "zh-CN")

ZH: dict[str, str] = {
    "Overview": "概览",
    "Match by hand": "手工匹配",
    "Fees between": "手续费区间",
    "charged per sale; the batch gives only totals": "按笔计费，批次仅有汇总",
    "Returned because": "退票原因",
    "holder name does not match (户名不符)": "户名不符",
    "account frozen or dormant": "账户冻结或久悬",
    "account closed": "账户已销户",
    "Type II account limit": "二类户限额",
    "other reason": "其他原因",
    "Held for": "暂缓原因",
    "risk review": "风控审核",
    "retrieval request (调单)": "调单",
    "Same-day limit: may be paid on": "当日额度不足，可能顺延至",
    "Not from the acquirer": "非收单机构付款",
    "Acquirer reference": "收单机构编号",
    "Decided on": "决定日期",
    "Under review": "审核中",
    "Suggested matches": "建议匹配",
    "Credits": "入账",
    "Batches": "批次",
    "Difference": "差额",
    "Days from due": "距应到日天数",
    "Payer": "付款方",
    "acquirer": "收单机构",
    "payer unknown": "付款方未知",
    "not from the acquirer": "非收单机构付款",
    "Confirm": "确认",
    "Split a credit": "拆分入账",
    "Parts (yuan)": "拆分金额（元）",
    "Split": "拆分",
    "Hand matches and splits": "手工匹配与拆分",
    "Kind": "类型",
    "undone": "已撤销",
    "Undo": "撤销",
    "Merchants": "商户",
    "Gap queue": "差异队列",
    "Agents": "采集终端",
    "Agent": "采集终端",
    "Imports": "导入",
    "Alerts": "短信提醒",
    "Audit log": "审计日志",
    "Users": "用户",
    "Sign in": "登录",
    "Sign out": "退出",
    "Username": "用户名",
    "Password": "密码",
    "Money at risk": "风险金额",
    "Open gaps by category": "按类别的未结差异",
    "Open gaps": "未结差异",
    "Trend over 30 days (new gaps, amount)": "近 30 天趋势（新增差异金额）",
    "Silent agents": "长时间未上报的采集终端",
    "Last imports": "最近导入",
    "Search": "搜索",
    "id, name or phone tail": "商户号、名称或手机号尾号",
    "Status": "状态",
    "Category": "类别",
    "any": "全部",
    "with open gaps": "有未结差异",
    "no open gaps": "无未结差异",
    "Next page": "下一页",
    "Name": "名称",
    "Merchant": "商户",
    "Amount": "金额",
    "Age": "时长",
    "Due": "应到账",
    "Detected": "发现时间",
    "Why": "原因",
    "Acknowledge": "确认",
    "Resolve": "解决",
    "Note": "备注",
    "Re-send alert": "重发提醒",
    "Approve": "批准",
    "Revoke": "吊销",
    "Revoke retired keys": "吊销旧密钥",
    "Last seen": "最近上报",
    "Outbox depth": "待发队列",
    "Key": "密钥",
    "Upload a statement": "上传对账单",
    "File": "文件",
    "Format": "格式",
    "Upload": "上传",
    "Rejects": "拒绝行",
    "Time": "时间",
    "Event": "事件",
    "Details": "详情",
    "Timeline": "时间线",
    "Settlement accounts": "结算账户",
    "Export CSV": "导出 CSV",
    "Actor": "操作人",
    "Action": "操作",
    "Target": "对象",
    "Phone": "手机号",
    "State": "状态",
    "Text": "内容",
    "Batch": "批次",
    "Batch figures from": "批次数据来源",
    "typed settlement slip": "手工录入结算单",
    "terminal link": "终端读取",
    "Credit": "入账",
    "Expected credit": "应入账",
    "Match": "匹配",
    "Gap": "差异",
    "Card change": "结算卡变更",
    "Terminal replaced": "终端更换",
    "SMS": "短信",
    "Rule": "规则",
    "Due date outside the working calendar": "应到账日超出工作日历范围",
    "The working calendar cannot be read": "无法读取工作日历",
    "The working calendar ends on": "工作日历截止于",
    "days left": "天后到期",
    "Gaps due after it count weekends only and their SMS wait up to 14 days: add the next year's public holidays, then reconcile all merchants.": "此后到期的差异只按周末计算，相关短信最多暂缓 14 天：请补充下一年的法定节假日，然后对全部商户重新对账。",
    "public holidays there are unknown": "该期间的法定节假日未知",
    "none": "无",
    "Activate": "生效",
    "Reject": "驳回",
    "Sort by": "排序",
    "money": "金额",
    "age": "时长",
    "Invalid username or password.": "用户名或密码错误。",
    "Too many attempts; try again later.": "尝试次数过多，请稍后再试。",
    "Done.": "已完成。",
    "Expected": "应到",
    "Arrived": "实到",
    "Language": "语言",
    "Escalations": "待人工处理",
    "Escalated": "升级时间",
    "It went out": "已发出",
    "Reference": "参考号",
    "Reference, e.g. SG-11": "参考号，如 SG-11",
    "Gaps": "差异",
    "Card": "结算卡",
    "Requested": "申请时间",
    "Effective": "生效时间",
    "Settlement cycle": "结算周期",
    "Cut-off": "日切时间",
    "in force": "当前生效",
    "superseded": "已被新卡取代",
    "not in force yet": "尚未生效",
    "Residual": "差额",
    "Fees": "手续费",
    "Final batch": "最后批次",
    "host balanced": "与主机平账",
    "host UNBALANCED": "与主机不平",
    "Unresolved gaps except those not due yet (the demo summary counts the same).": "未解决差异的金额，不含未到期的款项（演示汇总按同一口径计算）。",
    "no heartbeat yet": "尚无心跳",
    "An agent is the settleguard program beside a POS terminal that reads its batches and sends them here.": "采集终端是装在 POS 机旁的 settleguard 程序，读取批次结算数据并上传到这里。",
    "Profile": "格式模板",
    "e.g. ccb": "如 ccb",
    "Account": "账号",
    "account number": "银行账号",
    "Profile: which bank export or acquirer file layout the file uses (icbc, ccb, cmb, abc, boc, …); leave it empty and it is detected from the content.": "格式模板：文件是哪家银行导出或收单机构文件的格式（icbc、ccb、cmb、abc、boc 等）；留空则按文件内容自动识别。",
    "Merchant: whose account the export belongs to, when the bank prints only a masked account (6217****0122) and it fits more than one registered account, or none.": "商户：银行只打印掩码账号（如 6217****0122）且对应多个或没有登记账户时，填写该流水所属的商户号。",
    "merchant id": "商户号",
    "Account: the account number the statement belongs to, only when the file does not name it; it is stored masked and as a keyed hash.": "账号：对账单所属的银行账号，仅在文件中没有账号时填写；系统只保存掩码和带密钥的哈希。",
    "Import": "导入",
    "duplicate, nothing new": "重复文件，无新内容",
    "credits": "笔入账",
    "debits": "笔支出",
    "rejected": "行被拒绝",
    "reconciled": "已重新对账",
    "merchants": "个商户",
    "Rows": "行数",
    "Bad request": "请求有误",
    "Not allowed": "无权访问",
    "Not found": "页面不存在",
    "File too large": "文件过大",
    "Too many requests": "请求过于频繁",
    "Server error": "服务器错误",
    "Error": "错误",
    "Role": "角色",
    "Users and API tokens are added and disabled on the command line (docs/operator.md):": "用户和 API 令牌在命令行中添加和停用（见 docs/operator.md）：",
    "Send again": "重新发送",
    "First page": "第一页",
    "Re-send from the gap queue if the merchant still needs it.": "如商户仍需通知，请在差异队列中重新发送。",
    "SMS that need a person: delivery failed or expired, no receipt in time, or the send was interrupted and nobody knows whether it went out. An interrupted send is never repeated on its own.": "需要人工处理的短信：投递失败或过期、未及时收到回执，或发送中断且无法确定是否已发出。中断的发送不会自动重发。",
}


def current_lang() -> str:
    """The language for this request (one of :data:`LANGS`), worked out once per request.

    A page calls ``_()`` hundreds of times; matching ``Accept-Language`` on each call cost a
    fifth of the gap queue's render time (benchmarks/dashboard.py).
    """
    lang = g.get("lang")
    if lang is None:
        lang = g.lang = _choose_lang()
    return str(lang)


def _choose_lang() -> str:
    wanted = request.args.get("lang")
    if wanted in LANGS:
        session["lang"] = wanted
        return wanted
    stored = session.get("lang")
    if stored in LANGS:
        return str(stored)
    best = request.accept_languages.best_match(["en", "zh-CN", "zh"])
    if best in ("zh-CN", "zh"):
        return "zh-CN"
    if best == "en":
        return "en"
    default = current_app.config.get("DASHBOARD_DEFAULT_LANG", "en")
    return default if default in LANGS else "en"


def translate(text: str) -> str:
    """``text`` in the request's language."""
    if current_lang() == "zh-CN":
        return ZH.get(text, text)
    return text
