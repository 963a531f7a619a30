"""Anonymised example exports, one per bank, laid out as the banks' real downloads.

Our own files: the names, accounts and amounts are invented; the layouts follow the public
descriptions cited in docs/statements.md (deb-sig/double-entry-generator's example exports
and providers). Each builder returns the file's bytes; EXPECTED holds what a correct reader
must find in it: (credits, credit total in fen, debits, debit total in fen).
"""

from __future__ import annotations

import io

import openpyxl
import xlwt

EXPECTED: dict[str, tuple[int, int, int, int]] = {
    "icbc": (3, 1436867, 2, 208800),
    "ccb": (3, 352301, 1, 3550),
    "cmb": (2, 316640, 1, 8800),
    "abc": (2, 376640, 1, 8800),
    "boc": (2, 420000, 1, 5000),
    "bocom": (2, 152423, 1, 10079),
}


def _icbc_cell(text: str, width: int = 20) -> str:
    """ICBC pads every cell with spaces to its width and ends it with a TAB."""
    return f'"{text:<{width}}\t"'


def icbc_csv(*, credit_total: str = "14,368.67", debit_total: str = "2,088.00") -> bytes:
    """工商银行 历史明细: UTF-8 BOM, preamble, 15 columns, padded cells, newest first."""
    header = (
        "交易日期,摘要,交易详情,交易场所,交易国家或地区简称,钞/汇,交易金额(收入),交易金额(支出),"
        "交易币种,记账金额(收入),记账金额(支出),记账币种,余额,对方户名,对方账户"
    )
    # (date, 摘要, place, credit, debit, balance, payer, payer account), newest first
    rows = [
        ("2026-03-05", "转账", "手机银行", "500.00", "", "22,280.67", "张三", "6222****4455"),
        ("2026-03-04", "网转", "手机银行", "", "2,000.00", "21,780.67", "王五", "6228****6677"),
        ("2026-03-03", "他行汇入", "", "12,345.67", "", "23,780.67", "银联商务股份有限公司",
         "3101****6787"),
        ("2026-03-02", "消费", "某某便利店", "", "88.00", "11,435.00", "深圳市某某科技有限公司",
         "4000****0001"),
        ("2026-03-02", "他行汇入", "", "1,523.00", "", "11,523.00", "拉卡拉支付股份有限公司",
         "3100****8899"),
    ]  # fmt: skip
    lines = [
        "明细查询文件下载",
        "",
        '卡号: 6217****0122,"卡别名: 门店收款卡"',
        "",
        '子账户序号: 00000,子账户类别: 活期,"子账户别名: "',
        "",
        header,
    ]
    for day, summary, place, credit, debit, balance, payer, account in rows:
        cells = [
            f"{day}     \t",
            _icbc_cell(summary),
            _icbc_cell("", 30),
            _icbc_cell(place, 60),
            _icbc_cell("CHN"),
            "钞        \t",
            _icbc_cell("-"),
            _icbc_cell("-"),
            "-              \t",
            _icbc_cell(credit),
            _icbc_cell(debit),
            "人民币         \t",
            _icbc_cell(balance),
            _icbc_cell(payer, 140),
            _icbc_cell(account, 19),
        ]
        lines.append(",".join(cells) + ",")
    lines += [" ", f"人民币合计,,,,,,,,,{_icbc_cell(credit_total)},{_icbc_cell(debit_total)},"]
    return ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")


CCB_HEADER = ["记账日", "交易日期", "交易时间", "支出", "收入", "账户余额", "币种", "摘要",
              "对方账号", "对方户名", "交易地点"]  # fmt: skip
CCB_ROWS: list[list[object]] = [
    ["20260302", "20260302", "10:15:02", 0, 1523.0, 11523.0, "人民币", "转账存入",
     "3100****8899", "拉***付股份有限公司", "网上银行"],
    ["20260302", "20260302", "18:40:11", 35.5, 0, 11487.5, "人民币", "消费",
     "6226****1111", "美***店", "某某美食店"],
    ["20260303", "20260303", "09:01:45", 0, 2000.0, 13487.5, "人民币", "转账存入",
     "6222****3344", "张*", "手机银行"],
    ["20260304", "20260304", "00:00:00", 0, 0.01, 13487.51, "人民币", "结息", "", "", ""],
]  # fmt: skip


def ccb_xls(*, sheets: int = 1, rows: list[list[object]] | None = None) -> bytes:
    """建设银行 交易明细 .xls (BIFF8): preamble rows, padded header, merged disclaimer."""
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("交易明细")
    preamble = [
        ["中国建设银行 China Construction Bank"],
        ["开户机构:", "中国建设银行股份有限公司某某支行"],
        ["币    种:", "人民币"],
        ["账    号:", "6217****0122"],
        [],
    ]
    for r, cells in enumerate(preamble):
        for c, value in enumerate(cells):
            sheet.write(r, c, value)
    for c, name in enumerate(CCB_HEADER):
        sheet.write(5, c, name + "  ")  # the bank pads header cells with trailing spaces
    body = CCB_ROWS if rows is None else rows
    for r, cells in enumerate(body, start=6):
        for c, value in enumerate(cells):
            sheet.write(r, c, value)
    last = 6 + len(body)
    sheet.write_merge(last, last, 0, 10, "以上数据仅供参考，具体内容请以柜台为准")
    for extra in range(1, sheets):
        book.add_sheet(f"Sheet{extra + 1}").write(0, 0, "备注")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def cmb_csv(*, encoding: str = "utf-8-sig", credit_total: str = "3,166.40") -> bytes:
    """招商银行 一卡通 交易流水: ``#`` preamble, TAB-padded quoted cells, ``#`` totals."""
    lines = [
        "# 招商银行交易记录",
        "# 导出时间: [2026-03-06 09:00:00]",
        "# 账号: [6214****5678]",
        "# 户名: [陈*]",
        "# 币种: [人民币]",
        "# 起始日期: [20260301]   终止日期: [20260305]",
        "交易日期,交易时间,收入,支出,余额,交易类型,交易备注",
    ]
    rows = [
        ("20260301", "09:12:00", "2766.40", "", "12766.40", "银联入账", "拉卡拉结算款"),
        ("20260302", "12:30:05", "", "88.00", "12678.40", "快捷支付", "某某超市"),
        ("20260303", "16:45:30", "400.00", "", "13078.40", "转账汇款", "张三 转账"),
    ]
    for row in rows:
        lines.append(",".join(f'"\t{cell}"' if cell else '""' for cell in row))
    lines += ["", f"# 收入合计: {credit_total} 元", "# 支出合计: 88.00 元"]
    text = "\r\n".join(lines) + "\r\n"
    return text.encode(encoding)


def abc_xlsx(*, truncate: int | None = None) -> bytes:
    """农业银行 账户明细 .xlsx: title row, account/holder/period row, header, text amounts."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "账户明细"
    sheet.append(["中国农业银行账户明细"])
    sheet.merge_cells("A1:I1")
    sheet.append(["账户：6228****7788", "户名：李*华", "起止日期：20260301-20260305"])
    sheet.append(["交易日期", "交易时间", "交易摘要", "交易金额", "本次余额", "对手信息",
                  "日 志 号", "交易渠道", "交易附言"])  # fmt: skip
    sheet.append(["20260301", "101500", "转存", "+2766.40", "12766.40", "拉卡拉支付股份有限公司",
                  "369396001", "超级网银", "结算款"])  # fmt: skip
    sheet.append(["20260302", "093000", "消费", "-88.00", "12678.40", "某某超市",
                  "369396002", "电子商务", ""])  # fmt: skip
    sheet.append(["20260303", "150000", "转账", "+1000.00", "13678.40", "王*",
                  "369396003", "手机银行", "货款"])  # fmt: skip
    out = io.BytesIO()
    book.save(out)
    data = out.getvalue()
    return data if truncate is None else data[:truncate]


def boc_csv() -> bytes:
    """中国银行 交易流水明细: a title row, 13 columns, signed amounts, newest first."""
    lines = [
        "中国银行交易流水明细单",
        "记账日期,记账时间,币别,金额,余额,交易名称,渠道,网点名称,附言,对方账户名,对方卡号/账号,"
        "对方开户行,借记卡号",
        '2026-03-03,10:00:00,人民币,"3,000.00","9,150.00",跨行转账,手机银行,----------,货款,'
        "某某贸易有限公司,3101******2211,某某银行,4321",
        '2026-03-02,12:24:20,人民币,-50.00,"6,150.00",网上快捷支付,银企对接,----------,'
        "支付宝-某某,支付宝-某某,Z200******010N,----------,4321",
        '2026-03-01,10:00:00,人民币,"1,200.00","6,200.00",银联入账,卡组织线上/无卡交易,'
        "----------,结算,银联商务股份有限公司,3101******6787,----------,4321",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def bocom_csv() -> bytes:
    """交通银行 借记卡 交易明细: 借贷 column with ``贷 Cr`` / ``借 Dr``."""
    lines = [
        "序号,交易日期,交易时间,交易类型,借贷,交易金额,余额,对方账号,对方户名,交易地点,摘要",
        "1,2026-03-01,09:00:00,其他交易,贷 Cr,1523.00,6523.00,3100****8899,拉卡拉支付股份有限公司,"
        "网络支付,银联入账",
        "2,2026-03-02,12:00:00,网上支付,借 Dr,100.79,6422.21,1111****1111,某某科技有限公司,网上支付,",
        "3,2026-03-03,10:00:00,存款利息,贷 Cr,1.23,6423.44,,应付个人活期储蓄存款利息,批处理,",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


BUILDERS = {
    "icbc": icbc_csv,
    "ccb": ccb_xls,
    "cmb": cmb_csv,
    "abc": abc_xlsx,
    "boc": boc_csv,
    "bocom": bocom_csv,
}


def payout_xlsx() -> bytes:
    """An acquirer's 出款记录 as .xlsx: 已出款, 退票 and 冻结 rows."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "出款记录"
    sheet.append(["出款记录查询"])
    sheet.append(["商户号", "出款日期", "交易总额", "手续费", "出款金额", "收款账号", "出款状态",
                  "退票原因", "出款流水号", "结算批次"])  # fmt: skip
    sheet.append(["822100000001", "2026-03-02", "1,528.00", "5.00", "1,523.00",
                  "6217****0122", "已出款", "", "CK20260302001", "000123,000124"])  # fmt: skip
    sheet.append(["822100000001", "2026-03-03", "2,010.00", "10.00", "2,000.00",
                  "6217****0122", "退票", "账户已销户", "CK20260303001", "000125"])  # fmt: skip
    sheet.append(["822100000002", "2026-03-03", "300.00", "1.50", "298.50",
                  "6228****7788", "冻结", "风控审核", "CK20260303002", "000031"])  # fmt: skip
    sheet.append(["合计", "", "3,838.00", "16.50", "3,821.50"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
