"""GraphiQL in real headless Chromium with the outside network blocked: the page renders from our
own server's files alone and runs its example query with the token `mediagraph dev` offers."""

from __future__ import annotations

import asyncio

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser.chrome import severe_console_messages, wait_until

pytestmark = pytest.mark.e2e


def _run_the_example_query(driver: webdriver.Chrome, api: str) -> str:
    driver.get(f"{api}/graphql")
    # Rendered: React replaced "Loading GraphiQL…" with the editor (nothing came from a CDN).
    wait_until(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".graphiql-container .graphiql-query-editor")
    )
    query = driver.find_element(By.CSS_SELECTOR, ".graphiql-query-editor").text
    assert "myMedia" in query, query
    driver.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()
    response: str = wait_until(
        driver,
        lambda d: (
            (text := d.find_element(By.CSS_SELECTOR, ".graphiql-response").text)
            and "myMedia" in text
            and text
        ),
    )
    return response


async def test_graphiql_renders_offline_and_runs_a_query_with_a_token(
    browser: webdriver.Chrome, dev_api: str
) -> None:
    response = await asyncio.to_thread(_run_the_example_query, browser, dev_api)
    assert '"edges": []' in response, response  # a signed-in answer: the headers tab held a token
    assert "UNAUTHENTICATED" not in response, response
    problems = await asyncio.to_thread(severe_console_messages, browser)
    assert problems == [], problems  # no blocked asset, no CSP violation, no failed request
