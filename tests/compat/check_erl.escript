#!/usr/bin/env escript
%% The outputs fed to erlang-jose, the library under Realtime's Joken.
%%
%% Usage: escript check_erl.escript KEYS_DIR
%% - API_JWT_JWKS from realtime.env decodes (jiffy, as JSON maps) to an object with a `keys` list.
%% - For every asymmetric token in the env files, the key is chosen as Realtime does (string kid
%%   equal, kty fitting the header alg), loaded with jose_jwk:from_map/1 and the token verified
%%   with jose_jwt:verify_strict/3 restricted to the header's alg; role and exp claims present.
%% - Control: the same token with one payload character changed does not verify.

main([Dir]) ->
    {ok, _} = application:ensure_all_started(jose),
    ok = jose:json_module(jose_json_jiffy),
    Old = case os:getenv("COMPAT_OLD_TOKENS") of
        false -> [];
        "" -> [];
        Path -> [check("jose.tokens_before_rotation", fun() -> old_tokens(Dir, Path) end)]
    end,
    Results = [
        check("realtime.api_jwt_jwks_object", fun() -> jwks(Dir) end),
        check("jose.verify_strict", fun() -> verify_all(Dir) end)
    ] ++ Old,
    Failed = length([R || R <- Results, R =/= ok]),
    io:format("# erlang: ~b passed, ~b failed~n", [length(Results) - Failed, Failed]),
    halt(case Failed of 0 -> 0; _ -> 1 end);
main(_) ->
    io:format(standard_error, "usage: check_erl.escript KEYS_DIR~n", []),
    halt(2).

check(Name, Fun) ->
    try Fun() of
        _ -> io:format("ok - erlang/~s~n", [Name]), ok
    catch
        throw:{check_failed, Msg} ->
            io:format("not ok - erlang/~s: ~s~n", [Name, Msg]), failed;
        Class:Reason ->
            %% Only the reason's tag: the full term may hold key material.
            Tag = if is_tuple(Reason), tuple_size(Reason) > 0 -> element(1, Reason); true -> Reason end,
            Short = lists:sublist(lists:flatten(io_lib:format("~0p", [Tag])), 80),
            io:format("not ok - erlang/~s: ~p: ~s~n", [Name, Class, Short]), failed
    end.

expect(true, _) -> ok;
expect(_, Msg) -> throw({check_failed, Msg}).

%% NAME='value' lines, the form the output contract promises.
read_env(Dir, File) ->
    {ok, Bin} = file:read_file(filename:join(Dir, File)),
    Lines = binary:split(Bin, <<"\n">>, [global]),
    maps:from_list(
        [{Name, Value} || Line <- Lines,
                          {match, [Name, Value]} <- [re:run(Line, "^([A-Za-z_][A-Za-z0-9_]*)='([^']*)'$",
                                                            [{capture, all_but_first, binary}])]]).

jwks(Dir) ->
    Env = read_env(Dir, "realtime.env"),
    expect(maps:is_key(<<"API_JWT_JWKS">>, Env), "realtime.env: API_JWT_JWKS not set"),
    Jwks = jiffy:decode(maps:get(<<"API_JWT_JWKS">>, Env), [return_maps]),
    expect(is_map(Jwks), "realtime.env: API_JWT_JWKS is not a JSON object"),
    Keys = maps:get(<<"keys">>, Jwks, undefined),
    expect(is_list(Keys) andalso Keys =/= [], "realtime.env: API_JWT_JWKS has no keys list"),
    Keys.

kty_for(<<"ES", _/binary>>) -> <<"EC">>;
kty_for(<<"RS", _/binary>>) -> <<"RSA">>;
kty_for(<<"PS", _/binary>>) -> <<"RSA">>;
kty_for(<<"Ed", _/binary>>) -> <<"OKP">>;
kty_for(_) -> <<"oct">>.

tokens(Dir) ->
    Files = ["auth.env", "realtime.env", "storage.env", "functions.env", "studio.env", "supabase.env"],
    lists:usort(
        [{File ++ ":" ++ binary_to_list(Name), Value}
         || File <- Files,
            {Name, Value} <- maps:to_list(read_env(Dir, File)),
            re:run(Value, "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$") =/= nomatch,
            is_asymmetric(Value)]).

header(Token) ->
    [H | _] = binary:split(Token, <<".">>),
    jiffy:decode(jose_base64url:'decode!'(H), [return_maps]).

is_asymmetric(Token) ->
    try maps:get(<<"alg">>, header(Token)) of
        <<"HS", _/binary>> -> false;
        _ -> true
    catch _:_ -> false
    end.

verify_all(Dir) ->
    Keys = jwks(Dir),
    Tokens = tokens(Dir),
    expect(Tokens =/= [], "no asymmetric token in the env files"),
    lists:foreach(fun({Where, Token}) -> verify(Where, Token, Keys) end, Tokens).

verify(Where, Token, Keys) ->
    Header = header(Token),
    Alg = maps:get(<<"alg">>, Header),
    Kid = maps:get(<<"kid">>, Header, undefined),
    expect(is_binary(Kid), Where ++ ": kid is not a string"),
    expect(maps:get(<<"typ">>, Header, undefined) =:= <<"JWT">>, Where ++ ": typ is not JWT"),
    Kty = kty_for(Alg),
    Match = [K || K <- Keys, maps:get(<<"kid">>, K, undefined) =:= Kid, maps:get(<<"kty">>, K, undefined) =:= Kty],
    expect(length(Match) =:= 1, Where ++ ": no single API_JWT_JWKS key with the token's kid and kty"),
    Jwk = jose_jwk:from_map(hd(Match)),
    case jose_jwt:verify_strict(Jwk, [Alg], Token) of
        {true, Jwt, _Jws} ->
            {_, Claims} = jose_jwt:to_map(Jwt),
            expect(maps:is_key(<<"role">>, Claims), Where ++ ": no role claim"),
            expect(is_number(maps:get(<<"exp">>, Claims, undefined)), Where ++ ": exp not numeric");
        _ ->
            expect(false, Where ++ ": verify_strict rejected the token")
    end,
    [H, P, S] = binary:split(Token, <<".">>, [global]),
    Tampered = <<H/binary, ".", (flip(P))/binary, ".", S/binary>>,
    case catch jose_jwt:verify_strict(Jwk, [Alg], Tampered) of
        {true, _, _} -> expect(false, Where ++ ": control: tampered token verified");
        _ -> ok
    end.

%% Tokens signed before a rotation: valid while their key is `previous`, rejected once revoked.
old_tokens(Dir, Path) ->
    Keys = jwks(Dir),
    Want = os:getenv("COMPAT_OLD_TOKENS_VALID") =:= "1",
    {ok, Bin} = file:read_file(Path),
    Tokens = [T || T <- binary:split(Bin, <<"\n">>, [global]), T =/= <<>>],
    expect(Tokens =/= [], "no saved tokens"),
    lists:foreach(
        fun(Token) ->
            Header = header(Token),
            Alg = maps:get(<<"alg">>, Header),
            Kid = maps:get(<<"kid">>, Header, undefined),
            Match = [K || K <- Keys, maps:get(<<"kid">>, K, undefined) =:= Kid,
                          maps:get(<<"kty">>, K, undefined) =:= kty_for(Alg)],
            Ok = case Match of
                [Key] -> element(1, jose_jwt:verify_strict(jose_jwk:from_map(Key), [Alg], Token)) =:= true;
                _ -> false
            end,
            expect(Ok =:= Want, case Want of
                true -> "a token signed before the rotation no longer verifies";
                false -> "a token signed with the revoked key still verifies"
            end)
        end, Tokens).

flip(<<C, Rest/binary>>) when C =:= $A -> <<$B, Rest/binary>>;
flip(<<_, Rest/binary>>) -> <<$A, Rest/binary>>.
